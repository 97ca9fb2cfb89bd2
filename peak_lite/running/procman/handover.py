"""``--replace``: take over a running manager's listening sockets, then its place.

The new manager duplicates the old one's listening sockets with
``pidfd_getfd(2)`` (Linux 5.6+; root, or a user allowed to ptrace the old
manager), preloads its application while the old pool keeps serving, and
only then asks the old manager to stop.  The sockets never close: connections
that arrive while the old children finish and the new ones start wait in
the backlog, and none is refused.  Where the sockets cannot be taken over
(no ``Listen``, an older kernel, no permission), the new manager says so and
binds its own once the old one has gone, as before.
"""

import ctypes
import errno
import json
import os
import signal
import socket
import time

from peak_lite.running.interfaces import RunningError
from peak_lite.running.sockets import CARRY_ENV, isListeningSocket
from peak_lite.util.lockfile import pidFileHolder

__all__ = ['Handover']

SYS_PIDFD_OPEN = 434        # the same number on every Linux architecture since 5.x
SYS_PIDFD_GETFD = 438

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class Handover:
    """One replacement of the manager that holds ``cfg.PidFile``.

    ``prepare()`` before opening the listeners, ``complete()`` once the new
    application is preloaded: it stops the old manager and takes the pid file.
    """

    def __init__(self, cfg, pidfile, stderr):
        self.cfg = cfg
        self.pidfile = pidfile
        self.stderr = stderr
        self.pid = None

    def prepare(self, environ):
        """Check who holds the pid file; carry its listening sockets into ``environ``."""
        named, holder = pidFileHolder(self.cfg.PidFile)
        if holder is None or named != holder:
            raise RunningError(f"{self.cfg.filename}: PidFile {self.cfg.PidFile} names pid "
                               f"{named}, but its lock is held by {holder or 'an unknown process'}"
                               f"; not replacing anyone: check what runs there")
        self.pid = holder
        try:
            fds = self._takeSockets()
        except OSError as e:
            self._say(f"cannot take over the listening sockets of manager {self.pid} "
                      f"({e.strerror}); binding them after it has stopped")
            return
        if fds:
            environ[CARRY_ENV] = json.dumps(fds)
            self._say(f"took over {len(fds)} listening socket(s) of manager {self.pid}")

    def complete(self):
        """Stop the old manager gracefully, wait for it to let go of the lock, take it."""
        self._say(f"replacing manager {self.pid}: sending SIGTERM")
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        patience = self.cfg.StopTimeout + self.cfg.KillTimeout + 10
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            if self.pidfile.attempt():
                self.pidfile.create()
                return
            time.sleep(0.02)
        raise RunningError(f"{self.cfg.filename}: manager {self.pid} did not stop within "
                           f"{patience:.0f}s; not replacing it")

    def _takeSockets(self):
        if not self.cfg.Listen:
            return []
        pidfd = _syscall(SYS_PIDFD_OPEN, self.pid, 0)
        taken = []
        try:
            for name in os.listdir(f'/proc/{self.pid}/fd'):
                try:
                    if not os.readlink(f'/proc/{self.pid}/fd/{name}').startswith('socket:'):
                        continue
                    fd = _syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
                except OSError as e:
                    if e.errno in (errno.ENOENT, errno.EBADF):
                        continue     # closed meanwhile
                    raise
                address = self._wanted(fd) if isListeningSocket(fd) else None
                if address is not None:
                    taken.append([fd, str(address), _fileId(address)])
                else:
                    os.close(fd)
        except BaseException:
            for fd, _, _ in taken:
                os.close(fd)
            raise
        finally:
            os.close(pidfd)
        return taken

    def _wanted(self, fd):
        """The Listen address this socket of the old manager serves, or None."""
        sock = socket.socket(fileno=os.dup(fd))
        try:
            name = sock.getsockname()
            family = sock.family
        finally:
            sock.close()
        for address in self.cfg.Listen:
            if address.kind == 'unix' and family == socket.AF_UNIX:
                # Bound under a private directory, then linked into place: the
                # name the kernel kept ends with the socket's own file name.
                bound = name.decode(errors='replace') if isinstance(name, bytes) else name
                if os.path.basename(bound) == os.path.basename(address.path):
                    return address
            elif address.kind == 'tcp' and family in (socket.AF_INET, socket.AF_INET6):
                if name[1] == address.port and name[0] in _addresses(address.host):
                    return address
        return None

    def _say(self, text):
        try:
            self.stderr.write(f"procman: {text}\n")
            self.stderr.flush()
        except (OSError, ValueError):
            pass


def _addresses(host):
    """The IP addresses ``host`` (a Listen line's host) stands for."""
    try:
        return {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except (socket.gaierror, UnicodeError):
        return {host}


def _fileId(address):
    """The identity of a unix socket's file, as the listener that bound it records it."""
    if address.kind != 'unix':
        return None
    try:
        st = os.lstat(address.path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino]


def _syscall(number, *args):
    result = _libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result
