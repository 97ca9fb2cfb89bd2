"""``--check``'s probes: what startup will open, lock and bind, tried without taking it.

Like ``nginx -t``: a config that passes ``--check`` starts.  Each probe runs
the check its startup step makes and refuses what that step would refuse,
with the same ``FILE:LINE`` error, but leaves the file system as it found it:
it never creates, truncates or unlinks a file, and never keeps a lock or a
socket.

A manager that already runs this config holds its sockets and hands them over
to its successor, so an address busy because of it is no obstacle.  That
manager is the one holding the pid file or, to vet a reload, the parent that
started this check with its first listening socket on fd 0.
"""

import errno
import fcntl
import os
import socket
import stat
import struct

from peak_lite.running.procman.interfaces import ConfigError
from peak_lite.util.lockfile import readPidFile
from peak_lite.util.safefile import checkTrusted

__all__ = ['probePidFile', 'probeStdErr', 'probeListen', 'probeStatusListen']

_OPEN = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC   # NONBLOCK: a FIFO must not hang us
_LISTENING = 0x10000    # __SO_ACCEPTCON in /proc/net/unix
_TCP_LISTEN = '0A'


def probePidFile(cfg, seen):
    """Check the pid file opens and locks; note a manager holding it in ``seen``."""
    if cfg.PidFile is None:
        return
    fd = _regularFile(cfg, 'PidFile', cfg.PidFile, os.O_RDWR, 'to lock it')
    if fd is None:
        return
    try:
        # Held for an instant: a manager starting in that instant would find
        # the file locked, as it would with any other process probing it.
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        seen['manager'] = readPidFile(cfg.PidFile)
    finally:
        os.close(fd)


def probeStdErr(cfg, seen):
    if cfg.StdErr is not None:
        fd = _regularFile(cfg, 'StdErr', cfg.StdErr, os.O_WRONLY | os.O_APPEND,
                          'for appending')
        if fd is not None:
            os.close(fd)


def probeListen(cfg, seen):
    """Bind each TCP address and probe each unix path; PidFile's probe ran before."""
    managers = {pid for pid in (seen.get('manager'), _parentManager()) if pid}
    for address in cfg.Listen:
        _probeListen(cfg, address, managers)


def probeStatusListen(cfg, seen):
    """Bind the status listener's address as startup will (see probeListen)."""
    if cfg.StatusListen is not None:
        managers = {pid for pid in (seen.get('manager'), _parentManager()) if pid}
        _probeListen(cfg, cfg.StatusListen, managers, 'StatusListen')


def _regularFile(cfg, key, path, flags, what):
    """Open ``path`` as startup will, minus O_CREAT; return the fd, or None if absent."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None     # the loader has checked that its directory lets us create it
    except OSError as e:
        raise cfg.errorAt(key, f"{key} {path}: cannot inspect: {e.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise cfg.errorAt(key, f"{key} {path}: is a symlink; refusing to follow it: remove"
                               f" it or choose another path")
    if not stat.S_ISREG(st.st_mode):
        raise cfg.errorAt(key, f"{key} {path}: is not a regular file: remove it or choose"
                               f" another path")
    try:
        fd = os.open(path, flags | _OPEN)
    except OSError as e:
        raise cfg.errorAt(key, f"{key} {path}: cannot open {what}: {e.strerror}") from None
    # Startup refuses a file another user owns or others may write: so do we.
    owners = (cfg.uid,) if key == 'StdErr' and getattr(cfg, 'uid', None) is not None else ()
    try:
        checkTrusted(fd, path, key, lambda message: cfg.errorAt(key, message), owners)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _parentManager():
    """The parent's pid if it gave us one of its listening sockets on fd 0, else None."""
    try:
        st = os.fstat(0)
    except OSError:
        return None
    if not stat.S_ISSOCK(st.st_mode):
        return None
    with socket.socket(fileno=os.dup(0)) as sock:
        try:
            if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                return None
        except OSError:
            return None
    parent = os.getppid()
    return parent if _heldBy({parent}, {str(st.st_ino)}) else None


def _probeListen(cfg, address, managers, key='Listen'):
    def refuse(message):
        return ConfigError(f"{key} {address}: {message}", cfg.filename, address.lineno or 1)

    if address.kind == 'unix':
        _probeUnix(address, managers, refuse)
    elif address.kind == 'tcp':
        family = socket.AF_INET6 if address.family == 'inet6' else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((address.host, address.port))
            except OSError as e:
                if e.errno == errno.EADDRINUSE and _heldBy(managers, _tcpInodes(address.port)):
                    return
                hint = '; is another server using it?' if e.errno == errno.EADDRINUSE else ''
                raise refuse(f"cannot listen: {e.strerror}{hint}") from None
    # fd:N names a descriptor the manager inherits when it starts: nothing to probe here.


def _probeUnix(address, managers, refuse):
    path = address.path
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        directory = os.path.dirname(path)
        if not os.access(directory, os.W_OK | os.X_OK):
            raise refuse(f"cannot create the socket: directory {directory} is not writable"
                         f" by this user; fix its permissions") from None
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise refuse("the path exists and is not a socket; remove it or choose another path")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError as e:
            if e.errno in (errno.ECONNREFUSED, errno.ENOENT):
                return      # stale: startup removes it
            raise refuse(f"cannot probe the socket: {e.strerror}") from None
        # The listener's creator, as the kernel recorded it at listen(): the
        # manager binds its socket under a private name first, so the path in
        # /proc/net/unix need not be this one.
        listener = struct.unpack('3i', probe.getsockopt(
            socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize('3i')))[0]
    if listener not in managers and not _heldBy(managers, _unixInodes(path)):
        raise refuse("another process is listening there; stop it or choose another path")


def _heldBy(pids, inodes):
    """True if one of ``pids`` has one of the socket ``inodes`` open."""
    for pid in pids:
        try:
            names = os.listdir(f'/proc/{pid}/fd')
        except OSError:
            continue
        for name in names:
            try:
                link = os.readlink(f'/proc/{pid}/fd/{name}')
            except OSError:
                continue
            if link.startswith('socket:[') and link[8:-1] in inodes:
                return True
    return False


def _tcpInodes(port):
    """Inodes of the TCP sockets listening on ``port``, any address."""
    inodes = set()
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        for fields in _rows(table):
            if (len(fields) > 9 and fields[3] == _TCP_LISTEN
                    and int(fields[1].rpartition(':')[2], 16) == port):
                inodes.add(fields[9])
    return inodes


def _unixInodes(path):
    """Inodes of the unix sockets listening on ``path``."""
    return {fields[6] for fields in _rows('/proc/net/unix')
            if len(fields) > 7 and fields[7] == path and int(fields[3], 16) & _LISTENING}


def _rows(table):
    try:
        with open(table) as f:
            return [line.split() for line in f.readlines()[1:]]
    except OSError:
        return []
