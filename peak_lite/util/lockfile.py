"""``flock`` locks and a pid file built on one.

The pid file's lock is held for the life of the process and survives
``exec``: the descriptor is inheritable, and its number travels in the
environment (see ``PidFile.ENV``), so a re-exec'ed manager adopts the very
same open file description and never lets go of the lock.
"""

import errno
import fcntl
import os

from zope.interface import implementer

from peak_lite.util.interfaces import AlreadyLocked, ILock, IPidFile, LockError

__all__ = ['FlockFile', 'PidFile', 'readPidFile']


@implementer(ILock)
class FlockFile:
    """An exclusive ``flock`` on a file, opened without following symlinks."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.fd = None
        self._held = False

    def _open(self):
        if self.fd is None:
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            except OSError as e:
                if e.errno == errno.ELOOP:
                    raise LockError(f"{self.path}: is a symlink; refusing to lock it. "
                                    f"Remove it or point the setting at a real file") from None
                raise LockError(f"{self.path}: cannot open: {e.strerror}") from None
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
        # inode away and let a second manager lock the new file.
        data = f"{os.getpid()}\n".encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)
        os.fsync(self.fd)

    def _readHolder(self):
        try:
            with open(self.path, 'rb') as f:
                return _parsePid(f.read(64))
        except OSError:
            return None

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


def readPidFile(path):
    """Return the pid of the live process holding the pid file at ``path``, or None.

    A file whose lock nobody holds is stale: None.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _parsePid(os.pread(fd, 64, 0))
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
