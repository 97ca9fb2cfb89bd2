"""``flock(2)`` locks and a pid file built on one.

The pid file's lock is held for the life of the process and survives
``exec``: the descriptor is inheritable, and its number travels in the
environment (see ``PidFile.ENV``), so a re-exec'ed manager adopts the very
same open file description and never lets go of the lock.
"""

import fcntl
import os
import stat

from zope.interface import implementer

from peak_lite.util.interfaces import AlreadyLocked, ILock, IPidFile, LockError
from peak_lite.util.safefile import openTrusted

__all__ = ['FlockFile', 'PidFile', 'readPidFile', 'lockHolder', 'pidFileHolder']


@implementer(ILock)
class FlockFile:
    """An exclusive ``flock`` on a file, opened without following symlinks.

    The file must be a regular file owned by this process's user that its
    group and others cannot write (see ``safefile.checkTrusted``); a FIFO,
    device, symlink or someone else's file is refused with a LockError.
    Created 0644.
    """

    what = 'lock file'       # how messages name the file

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.fd = None
        self._held = False

    def _open(self):
        if self.fd is None:
            self.fd = openTrusted(self.path, os.O_RDWR | os.O_CREAT, 0o644, self.what,
                                  LockError)
        return self.fd

    def attempt(self):
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._close()
            return False
        self._held = True
        return True

    def obtain(self):
        fcntl.flock(self._open(), fcntl.LOCK_EX)
        self._held = True
        return True

    def release(self):
        if not self.locked():
            raise LockError(f"{self.path}: release() of a lock that is not held")
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        self._close()

    def locked(self):
        return self.fd is not None and self._held

    def _close(self):
        self._held = False
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@implementer(IPidFile)
class PidFile(FlockFile):
    """A locked pid file.  See IPidFile."""

    ENV = 'PEAK_PIDFILE_FD'   # "FD:PATH" of a held pid file, across exec
    what = 'PidFile'

    def create(self):
        if not self.attempt():
            pid = self._readHolder()
            holder = f"process {pid}" if pid else "another process"
            raise AlreadyLocked(
                f"{self.path}: {holder} holds this pid file; stop it first, "
                f"or use --replace", pid)
        self._writePid()
        return self

    def adopt(self, fd):
        """Take over ``fd``, inherited across exec, which already holds the lock."""
        st, mine = os.fstat(fd), os.stat(self.path, follow_symlinks=False)
        if (st.st_dev, st.st_ino) != (mine.st_dev, mine.st_ino):
            raise LockError(f"{self.path}: inherited descriptor {fd} is not this file")
        self.fd = fd
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)   # a no-op re-assertion: we hold it
        self._held = True
        self._writePid()
        return self

    @classmethod
    def fromEnvironment(cls, environ, path):
        """Adopt the lock named in ``environ`` for ``path``, or return None."""
        value = environ.get(cls.ENV, '')
        fd, _, envPath = value.partition(':')
        if not fd.isdigit() or os.path.abspath(envPath) != os.path.abspath(path):
            return None
        return cls(path).adopt(int(fd))

    def inheritAcrossExec(self, environ):
        """Keep the locked descriptor open across exec, and name it in ``environ``."""
        os.set_inheritable(self.fd, True)
        environ[self.ENV] = f"{self.fd}:{self.path}"

    def _writePid(self):
        # In place, on the locked descriptor: a rename would move the lock's
        # inode away and let a second manager lock the new file.  Written first,
        # then cut to length, never truncated first: a reader (``--reload``
        # polling while a restart's exec re-adopts the file) sees the old pid or
        # the new one, never an empty file (a longer old pid's tail is past the
        # newline only for that instant).
        data = f"{os.getpid()}\n".encode()
        os.pwrite(self.fd, data, 0)
        os.ftruncate(self.fd, len(data))
        os.fsync(self.fd)

    def _readHolder(self):
        return readPidFile(self.path)

    def readPid(self):
        if self.fd is not None:
            return _parsePid(os.pread(self.fd, 64, 0))
        return self._readHolder()

    def remove(self):
        if not self.locked():
            return
        try:
            if self.readPid() == os.getpid():
                st, mine = os.fstat(self.fd), os.stat(self.path, follow_symlinks=False)
                if (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino):
                    os.unlink(self.path)
        except FileNotFoundError:
            pass
        finally:
            self.release()


def _parsePid(data):
    try:
        pid = int(data.split()[0])
    except (ValueError, IndexError):
        return None
    return pid if pid > 0 else None


def lockHolder(path):
    """The pid of the process holding an ``flock`` on the file at ``path``, or None.

    Read from /proc/locks, which names the process that took the lock (a
    manager keeps its pid across its restarts' exec).  None also where
    /proc/locks is unavailable.
    """
    try:
        st = os.stat(path, follow_symlinks=False)
        with open('/proc/locks') as f:
            lines = f.readlines()
    except OSError:
        return None
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or parts[1] != 'FLOCK':      # '->' marks a blocked waiter
            continue
        try:
            major, minor, inode = parts[5].split(':')
            if (int(major, 16), int(minor, 16), int(inode)) == want:
                return int(parts[4])
        except ValueError:
            continue
    return None


def pidFileHolder(path):
    """(pid written in the file, pid holding its lock) for the pid file at ``path``.

    The holder is None when nobody holds the lock (a stale file).  A caller
    about to signal the named process must check that the two agree: the
    file's contents alone prove nothing (anyone able to write it, or a pid
    reused since, could name an innocent process).
    """
    named = readPidFile(path)
    if named is None:
        return None, None
    holder = lockHolder(path)
    return named, holder


def readPidFile(path):
    """Return the pid written in the pid file at ``path`` if its lock is held, or None.

    A file whose lock nobody holds is stale: None.  The pid is what the file
    says; ``pidFileHolder`` also names the process that really holds the lock.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _parsePid(os.pread(fd, 64, 0))
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
