"""One listening socket: bind it safely, or find one a parent handed over.

A unix socket is bound in a private directory (mode 0700, made next to the
target path and reached through its descriptor), given its mode and owner
there, and only then linked to its path.  So no chmod or chown ever goes
through a path someone else could have replaced, and the socket is never
visible with the wrong mode.  A side effect: the kernel remembers the
private name, so ``ss -xl`` shows ``/proc/self/fd/N/NAME`` for it.
"""

import errno
import logging
import os
import secrets
import socket
import stat

from zope.interface import implementer

from peak_lite.running.interfaces import IListener, SocketError
from peak_lite.running.sockets.specs import BACKLOG, CHILD_ENV, parseAddress

__all__ = ['Listener', 'listenOn', 'listeningSocketOnFd', 'isListeningSocket',
           'inheritedListeners']

log = logging.getLogger('peak_lite.running.sockets')


def listeningSocketOnFd(fd=0):
    """A socket object on a duplicate of ``fd`` if it is a listening stream socket, else None."""
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return None
        probe = socket.socket(fileno=os.dup(fd))
    except OSError:
        return None
    try:
        if (probe.type == socket.SOCK_STREAM
                and probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)):
            return probe
    except OSError:
        pass
    probe.close()
    return None


def isListeningSocket(fd):
    """True if ``fd`` is a stream socket in the listening state."""
    sock = listeningSocketOnFd(fd)
    if sock is None:
        return False
    sock.close()
    return True


def inheritedListeners(environ, release=False):
    """The listening sockets a process manager handed over: fd 0, then ``PEAK_LISTEN_FDS``.

    ``PEAK_LISTEN_FDS`` lists descriptors (``0,3,4``) when there are several.
    Each is duplicated, as listeningSocketOnFd does, and the duplicates are
    not inheritable.  With ``release`` the originals are given up: fd 0 then
    reads ``/dev/null``, the others are closed and ``PEAK_LISTEN_FDS`` leaves
    ``environ`` and ``os.environ``.  So a process the application starts never inherits a
    listening socket, which would keep the address bound after the pool
    stops.
    """
    fds = [0]
    for part in environ.get(CHILD_ENV, '').split(','):
        if part.strip().isdigit() and int(part) not in fds:
            fds.append(int(part))
    found = [(fd, sock) for fd, sock in zip(fds, map(listeningSocketOnFd, fds))
             if sock is not None]
    if release and found:
        for fd, _ in found:
            if fd == 0:
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.close(null)
            else:
                os.close(fd)
        environ.pop(CHILD_ENV, None)
        os.environ.pop(CHILD_ENV, None)     # what processes we start will inherit
    return [sock for _, sock in found]


def listenOn(spec, owner=None, backlog=BACKLOG):
    """Parse ``spec`` and return a listening socket for it; SocketError if that fails."""
    try:
        address = parseAddress(spec)
    except ValueError as e:
        raise SocketError(f'socket {spec!r}: {e}') from None
    return Listener.bind(address, owner, backlog).sock


# -- one listening socket -------------------------------------------------------

@implementer(IListener)
class Listener:
    """See IListener.  A listening socket, the address it was opened for, and, for a
    unix socket this process bound, the identity ``(st_dev, st_ino)`` of its file.

    The identity is what makes every later change to the file safe: the
    socket holds its file's inode, so no other file can have it while the
    socket is open.
    """

    def __init__(self, sock, address=None, fileId=None):
        self.sock = sock
        self.address = address
        self.fileId = fileId

    @classmethod
    def bind(cls, address, owner=None, backlog=BACKLOG):
        """Open ``address``: bind and listen, or take over the socket of kind ``fd``.

        A unix socket gets ``address.mode`` and ``owner`` (``(uid, gid)``, -1
        leaves one as created) before it appears at its path.  A stale socket
        file at the path (nobody accepts on it) is replaced; a live server's
        socket, or anything that is not a socket, is refused with SocketError.
        """
        if address.kind == 'fd':
            if not isListeningSocket(address.fd):
                raise SocketError(f'{address}: descriptor {address.fd} is not an inherited'
                                  f' listening socket', address)
            return cls(socket.socket(fileno=address.fd), address)
        if address.kind == 'unix':
            sock, fileId = _bindUnix(address, owner, backlog)
            return cls(sock, address, fileId)
        sock = socket.socket(address.socketFamily, socket.SOCK_STREAM)
        try:
            # Connections of a stopped server in TIME_WAIT must not block a new bind.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address.sockaddr)
            sock.listen(backlog)
        except OSError as e:
            sock.close()
            raise _cannotListen(address, e) from None
        return cls(sock, address)

    def fileno(self):
        return self.sock.fileno()

    def matches(self, address):
        """True if this socket is the one ``address`` names: same path, same family,
        address and port (any port for port 0), or the same descriptor."""
        if self.address is not None and self.address.kind == address.kind == 'unix':
            return self.address.path == address.path
        if address.kind == 'fd':
            return self.sock.fileno() == address.fd
        try:
            name = self.sock.getsockname()
        except OSError:
            return False
        if address.kind == 'unix':
            return self.sock.family == socket.AF_UNIX and name == address.path
        if self.sock.family != address.socketFamily:
            return False
        try:
            wanted = socket.getaddrinfo(address.host, address.port, address.socketFamily,
                                        socket.SOCK_STREAM, 0, socket.AI_PASSIVE)[0][4]
        except OSError:
            return False
        return name[0] == wanted[0] and (address.port == 0 or name[1] == wanted[1])

    def ownsFile(self):
        """True if the path of this unix socket still names the file it was bound as."""
        if self.fileId is None:
            return False
        try:
            st = os.lstat(self.address.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == self.fileId

    def update(self, address, owner=None):
        """Adopt ``address`` (which matches) and give the socket file its mode and owner.

        The file is changed only through a descriptor of the very inode this
        socket was bound as; if its path now names anything else, nothing is
        changed and a warning says so.  Never raises for the file: the socket
        keeps serving, and the log says what could not be changed.
        """
        self.address = address
        if address.kind != 'unix':
            return
        if self.fileId is None:
            log.warning("unix:%s: this socket came from an older manager, which did not"
                        " record its file; its mode and owner are left as they are",
                        address.path)
            return
        try:
            pin = os.open(address.path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            pin = None
        try:
            st = os.fstat(pin) if pin is not None else None
            if st is None or (st.st_dev, st.st_ino) != self.fileId:
                log.warning("unix:%s no longer names this manager's socket (it was removed"
                            " or replaced); its mode and owner are not changed, and clients"
                            " that connect to that path do not reach this manager",
                            address.path)
                return
            target = f'/proc/self/fd/{pin}'     # the inode itself, whatever the path says
            if stat.S_IMODE(st.st_mode) != address.mode:
                os.chmod(target, address.mode)
            if owner is not None and _needsChown(st, owner):
                os.chown(target, *owner)
        except OSError as e:
            # The socket itself still works: keep serving on it, and say why not.
            log.error("%s: cannot give the socket file its mode or owner: %s; it keeps"
                      " the ones it had", address, e.strerror)
        finally:
            if pin is not None:
                os.close(pin)

    def close(self, unlink=True):
        """Close the socket; with ``unlink``, remove its file if the path still names it."""
        if unlink and self.ownsFile() and not _openElsewhere(self.sock):
            try:
                os.unlink(self.address.path)
            except FileNotFoundError:
                pass
        self.sock.close()

    def describe(self):
        if self.address is not None:
            return f'unix:{self.address.path}' if self.address.kind == 'unix' \
                else str(self.address)
        try:
            name = self.sock.getsockname()
        except OSError:
            return f'fd {self.sock.fileno()}'
        if self.sock.family == socket.AF_UNIX:
            return f'unix:{name if isinstance(name, str) else name.decode(errors="replace")}'
        host = f'[{name[0]}]' if self.sock.family == socket.AF_INET6 else name[0]
        return f'{host}:{name[1]}'


def _openElsewhere(sock):
    """True if a process other than us and our children holds this very socket:
    a successor that took it over (``--replace``)."""
    try:
        link = f'socket:[{os.fstat(sock.fileno()).st_ino}]'
    except OSError:
        return False
    me = str(os.getpid())
    for pid in os.listdir('/proc'):
        if not pid.isdigit() or pid == me:
            continue
        try:
            with open(f'/proc/{pid}/stat') as f:
                if f.read().rpartition(')')[2].split()[1] == me:
                    continue        # a child of ours: a worker, a reload's check
            fds = os.listdir(f'/proc/{pid}/fd')
        except (OSError, IndexError):
            continue
        for fd in fds:
            try:
                if os.readlink(f'/proc/{pid}/fd/{fd}') == link:
                    return True
            except OSError:
                continue
    return False


def _needsChown(st, owner):
    uid, gid = owner
    return (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid)


def _cannotListen(address, error):
    return SocketError(f'{address}: cannot listen: {error.strerror or error}; is another'
                       f' server using it, or is the directory missing?', address)


def _bindUnix(address, owner, backlog):
    """Bind in a private directory, set mode and owner there, then link into place."""
    directory, name = os.path.split(os.path.abspath(address.path))
    try:
        parent = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise _cannotListen(address, e) from None
    private = f'.{name}.{secrets.token_hex(6)}'
    made = privateFd = sock = None
    try:
        _clearStale(address, parent, name)
        os.mkdir(private, 0o700, dir_fd=parent)
        made = True
        privateFd = os.open(private, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                            | os.O_CLOEXEC, dir_fd=parent)
        st = os.fstat(privateFd)
        if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) != 0o700:
            raise SocketError(f'{address}: the private directory {directory}/{private} was'
                              f' replaced while binding; who else writes to {directory}?',
                              address)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(f'/proc/self/fd/{privateFd}/{name}')
        # Nobody else can write in the private directory: these touch our socket.
        os.chmod(name, address.mode, dir_fd=privateFd)
        if owner is not None:
            os.chown(name, *owner, dir_fd=privateFd, follow_symlinks=False)
        st = os.stat(name, dir_fd=privateFd, follow_symlinks=False)
        sock.listen(backlog)
        _linkIntoPlace(address, name, privateFd, parent)
        return sock, (st.st_dev, st.st_ino)
    except OSError as e:
        if sock is not None:
            sock.close()
        if e.errno == errno.EPERM and owner is not None:
            raise SocketError(f'{address}: cannot give the socket the owner {owner[0]}:'
                              f'{owner[1]}: {e.strerror}; run the manager as root or'
                              f' remove ListenOwner', address) from None
        raise _cannotListen(address, e) from None
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    finally:
        if privateFd is not None:
            _removeQuietly(name, privateFd)
            os.close(privateFd)
        if made:
            try:
                os.rmdir(private, dir_fd=parent)
            except OSError:
                log.warning("cannot remove %s/%s", directory, private, exc_info=True)
        os.close(parent)


def _linkIntoPlace(address, name, privateFd, parent):
    # link(), unlike rename(), never replaces a file: a server that started
    # listening at the path since _clearStale keeps its socket.
    for attempt in (1, 2):
        try:
            os.link(name, name, src_dir_fd=privateFd, dst_dir_fd=parent,
                    follow_symlinks=False)
            return
        except FileExistsError:
            if attempt == 2:
                raise
            _clearStale(address, parent, name)


def _clearStale(address, parent, name):
    """Remove a socket file nobody accepts on; refuse a live socket or anything else."""
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise SocketError(f'{address}: the path exists and is not a socket; remove it or'
                          f' choose another path', address)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)    # a live server with a full backlog says EAGAIN, not wait
    try:
        probe.connect(f'/proc/self/fd/{parent}/{name}')
    except (ConnectionRefusedError, FileNotFoundError):
        _removeQuietly(name, parent)
        return
    except BlockingIOError:
        pass
    except OSError as e:
        raise SocketError(f'{address}: cannot tell whether a server listens there:'
                          f' {e.strerror}; remove the socket file if none does', address) \
            from None
    finally:
        probe.close()
    raise SocketError(f'{address}: another process is listening there; stop it or choose'
                      f' another path', address)


def _removeQuietly(name, dirFd):
    try:
        os.unlink(name, dir_fd=dirFd)
    except FileNotFoundError:
        pass
