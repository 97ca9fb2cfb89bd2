"""The manager's listening sockets: open them, inherit them, carry them across exec.

Children receive the first listener on fd 0 (the FastCGI convention of
mod_fcgid, mod_fastcgi and supervisord) and the others from fd 3 up;
``PEAK_LISTEN_FDS`` in a child's environment lists them all (``0,3,4``).
"""

import errno
import os
import socket
import stat

from peak_lite.running.procman.interfaces import ConfigError

__all__ = ['Listeners', 'isListeningSocket']

CARRY_ENV = 'PEAK_PROCMAN_FDS'    # listeners carried across a restart's exec
CHILD_ENV = 'PEAK_LISTEN_FDS'
BACKLOG = 1024


def isListeningSocket(fd):
    """True if ``fd`` is a socket in the listening state."""
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return False
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return False
    try:
        return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    except OSError:
        return False
    finally:
        sock.close()


def _name(sock):
    try:
        name = sock.getsockname()
    except OSError:
        return None
    if sock.family == socket.AF_UNIX:
        return ('unix', name if isinstance(name, str) else name.decode(errors='replace'))
    return ('tcp', name[0], name[1])


class Listeners:
    """The listening sockets one manager serves, in config order."""

    def __init__(self, sockets=(), owned=()):
        self.sockets = list(sockets)
        self.owned = set(owned)    # unix socket paths we created, removed at final exit

    @classmethod
    def open(cls, cfg, environ, stdin=0):
        """Open or adopt the sockets ``cfg.Listen`` names; else inherit fd 0 or LISTEN_FDS."""
        carried = _carried(environ)
        if cfg.Listen:
            sockets, owned = [], set()
            for address in cfg.Listen:
                sock = _adopt(carried, address) or _open(cfg, address)
                if address.kind == 'unix':
                    owned.add(address.path)
                sockets.append(sock)
            for leftover in carried:
                leftover.close()
            return cls(sockets, owned)
        if carried:
            return cls(carried)
        systemd = _systemdFds(environ)
        if systemd:
            return cls(systemd)
        if isListeningSocket(stdin):
            return cls([socket.socket(fileno=os.dup(stdin))])
        return cls()

    def fds(self):
        return [s.fileno() for s in self.sockets]

    def carryAcrossExec(self, environ):
        for s in self.sockets:
            os.set_inheritable(s.fileno(), True)
        environ[CARRY_ENV] = ','.join(str(fd) for fd in self.fds())
        environ.pop('LISTEN_FDS', None)
        environ.pop('LISTEN_PID', None)

    def installInChild(self):
        """In a child: put the listeners on fds 0, 3, 4... and close our other copies."""
        if not self.sockets:
            return
        targets = [0] + list(range(3, 2 + len(self.sockets)))
        fds = self.fds()
        # Move every listener out of the way first, so no dup2 clobbers another.
        high = [os.dup(fd) for fd in fds]
        for fd in fds:
            os.close(fd)
        for src, dst in zip(high, targets):
            os.dup2(src, dst, inheritable=True)
            os.close(src)
        os.environ[CHILD_ENV] = ','.join(map(str, targets))
        for s in self.sockets:
            s.detach()

    def close(self, unlink=True):
        for s in self.sockets:
            s.close()
        if unlink:
            for path in self.owned:
                if _stillListening(path):
                    continue         # a successor took the socket over (--replace)
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        self.sockets = []

    def describe(self):
        return ', '.join(_describe(s) for s in self.sockets) or 'no socket'


def _stillListening(path):
    """True if a listening socket bound to ``path`` is still open in some process."""
    try:
        with open('/proc/net/unix') as f:
            next(f)
            return any(line.split()[-1] == path and line.split()[3] == '00010000'
                       for line in f if len(line.split()) == 8)
    except (OSError, StopIteration):
        return False


def _describe(sock):
    name = _name(sock)
    if name is None:
        return f'fd {sock.fileno()}'
    if name[0] == 'unix':
        return f'unix:{name[1]}'
    return f'{name[1]}:{name[2]}'


def _carried(environ):
    value = environ.pop(CARRY_ENV, '')
    sockets = []
    for part in filter(None, value.split(',')):
        fd = int(part)
        if isListeningSocket(fd):
            sock = socket.socket(fileno=fd)
            os.set_inheritable(fd, False)
            sockets.append(sock)
    return sockets


def _systemdFds(environ):
    try:
        count = int(environ.get('LISTEN_FDS', ''))
        pid = int(environ.get('LISTEN_PID', ''))
    except ValueError:
        return []
    if pid != os.getpid():
        return []
    sockets = []
    for fd in range(3, 3 + count):
        if isListeningSocket(fd):
            os.set_inheritable(fd, False)
            sockets.append(socket.socket(fileno=fd))
    for name in ('LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES'):
        environ.pop(name, None)
    return sockets


def _adopt(carried, address):
    for sock in carried:
        name = _name(sock)
        if address.kind == 'unix' and name == ('unix', address.path):
            carried.remove(sock)
            os.chmod(address.path, address.mode)
            return sock
        if address.kind == 'tcp' and name and name[0] == 'tcp' and name[2] == address.port:
            carried.remove(sock)
            return sock
        if address.kind == 'fd' and sock.fileno() == address.fd:
            carried.remove(sock)
            return sock
    return None


def _open(cfg, address):
    try:
        if address.kind == 'fd':
            if not isListeningSocket(address.fd):
                raise cfg.errorAt('Listen', f"Listen fd:{address.fd}: descriptor {address.fd} "
                                  f"is not an inherited listening socket")
            return socket.socket(fileno=address.fd)
        if address.kind == 'unix':
            _removeStale(cfg, address.path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(address.path)
            os.chmod(address.path, address.mode)
        else:
            family = socket.AF_INET6 if address.family == 'inet6' else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address.host, address.port))
        sock.listen(BACKLOG)
        return sock
    except OSError as e:
        raise ConfigError(f"Listen {address}: cannot listen: {e.strerror}; is another server "
                          f"using it?", cfg.filename, address.lineno or 1) from None


def _removeStale(cfg, path):
    """Remove a socket file nobody listens on; refuse to touch anything else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ConfigError(f"Listen unix:{path}: the path exists and is not a socket; "
                          f"remove it or choose another path", cfg.filename,
                          cfg.lineOf('Listen') or 1)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError as e:
        if e.errno in (errno.ECONNREFUSED, errno.ENOENT):
            os.unlink(path)
            return
        raise
    finally:
        probe.close()
    raise ConfigError(f"Listen unix:{path}: another process is listening there; stop it "
                      f"or choose another path", cfg.filename, cfg.lineOf('Listen') or 1)
