"""A process manager's listening sockets: open or adopt them, carry them across exec,
hand them to children.

Children receive the first listener on fd 0 (the FastCGI convention of
mod_fcgid, mod_fastcgi and supervisord) and the others from fd 3 up;
``PEAK_LISTEN_FDS`` in a child's environment lists them all (``0,3,4``).

Across a restart's ``exec`` the sockets stay open, and ``PEAK_PROCMAN_FDS``
records for each its descriptor, the address it was opened for and the
identity of its unix socket file.  The new manager adopts a carried socket
only for the same full address (path; family, address and port; or
descriptor) and closes the others before it binds anything, so an address
that moved is bound afresh.
"""

import json
import logging
import os
import socket

from zope.interface import implementer

from peak_lite.running.interfaces import IListeners
from peak_lite.running.sockets.listener import Listener, isListeningSocket
from peak_lite.running.sockets.specs import CARRY_ENV, CHILD_ENV, parseAddress

__all__ = ['Listeners']

log = logging.getLogger('peak_lite.running.sockets')


@implementer(IListeners)
class Listeners:
    """See IListeners."""

    def __init__(self, listeners=(), inherited=False):
        self.listeners = list(listeners)
        self.inherited = inherited

    @property
    def sockets(self):
        return [listener.sock for listener in self.listeners]

    @classmethod
    def open(cls, addresses, environ, stdin=0, owner=None, carryName=CARRY_ENV):
        """Open or adopt the sockets ``addresses`` name; else inherit.

        Without addresses: the sockets carried across our own exec, else
        systemd's ``LISTEN_FDS``, else fd 0 if it is a listening socket.
        ``owner`` (``(uid, gid)``) is given to the unix sockets.  ``carryName``:
        the environment variable the carried sockets are recorded in (a set
        carried apart, such as the status listener, has its own).  Raises
        SocketError naming the address that cannot be opened; nothing is left
        open then.
        """
        carried = _carried(environ, carryName)
        if not addresses:
            if carried:
                return cls(carried, inherited=True)
            systemd = _systemdFds(environ)
            if systemd:
                return cls(systemd, inherited=True)
            if isListeningSocket(stdin):
                return cls([Listener(socket.socket(fileno=os.dup(stdin)))], inherited=True)
            return cls()
        adopted = [_take(carried, address) for address in addresses]
        for leftover in carried:      # before binding: an address may have moved
            leftover.close()
        result = cls()
        try:
            for address, listener in zip(addresses, adopted):
                if listener is None:
                    listener = Listener.bind(address, owner)
                else:
                    adopted[adopted.index(listener)] = None
                    listener.update(address, owner)
                    result.inherited = True
                result.listeners.append(listener)
        except BaseException:
            result.close()
            for listener in filter(None, adopted):
                listener.close()
            raise
        return result

    def fds(self):
        return [listener.fileno() for listener in self.listeners]

    @classmethod
    def carried(cls, environ, carryName=CARRY_ENV):
        """The sockets our previous self carried across exec under ``carryName``, taken
        out of ``environ``, none of them bound afresh."""
        return cls(_carried(environ, carryName))

    def carryAcrossExec(self, environ, carryName=CARRY_ENV):
        records = []
        for listener in self.listeners:
            os.set_inheritable(listener.fileno(), True)
            records.append([listener.fileno(),
                            str(listener.address) if listener.address else None,
                            list(listener.fileId) if listener.fileId else None])
        environ[carryName] = json.dumps(records)
        environ.pop('LISTEN_FDS', None)
        environ.pop('LISTEN_PID', None)

    def installInChild(self):
        """In a child: put the listeners on fds 0, 3, 4... and close our other copies."""
        if not self.listeners:
            return
        targets = [0] + list(range(3, 2 + len(self.listeners)))
        fds = self.fds()
        # Move every listener out of the way first, so no dup2 clobbers another.
        high = [os.dup(fd) for fd in fds]
        for fd in fds:
            os.close(fd)
        for src, dst in zip(high, targets):
            os.dup2(src, dst, inheritable=True)
            os.close(src)
        os.environ[CHILD_ENV] = ','.join(map(str, targets))
        for listener in self.listeners:
            listener.sock.detach()

    def close(self, unlink=True):
        """Close every socket; with ``unlink``, remove the unix socket files that are still
        ours (never one a successor bound at the same path)."""
        for listener in self.listeners:
            listener.close(unlink)
        self.listeners = []

    def describe(self):
        return ', '.join(listener.describe() for listener in self.listeners) or 'no socket'


def _take(carried, address):
    for listener in carried:
        if listener.matches(address):
            carried.remove(listener)
            return listener
    return None


def _carried(environ, name=CARRY_ENV):
    """The listeners our previous self carried across exec (and took out of environ)."""
    value = environ.pop(name, '')
    if value.startswith('['):
        try:
            records = [(int(fd), spec, fileId) for fd, spec, fileId in json.loads(value)]
        except (ValueError, TypeError):
            log.warning("%s=%r is not a list of sockets; ignoring it", name, value)
            return []
    else:       # the plain "3,4" of earlier versions
        records = [(int(part), None, None) for part in value.split(',') if part.isdigit()]
    listeners = []
    for fd, spec, fileId in records:
        if not isListeningSocket(fd):
            continue
        os.set_inheritable(fd, False)
        try:
            address = parseAddress(spec) if spec else None
        except ValueError:
            address = None
        listeners.append(Listener(socket.socket(fileno=fd), address,
                                  tuple(fileId) if address and fileId else None))
    return listeners


def _systemdFds(environ):
    try:
        count = int(environ.get('LISTEN_FDS', ''))
        pid = int(environ.get('LISTEN_PID', ''))
    except ValueError:
        return []
    if pid != os.getpid():
        return []
    listeners = []
    for fd in range(3, 3 + count):
        if isListeningSocket(fd):
            os.set_inheritable(fd, False)
            listeners.append(Listener(socket.socket(fileno=fd)))
    for name in ('LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES'):
        environ.pop(name, None)
    return listeners

