"""Contracts and exceptions of the util layer."""

from zope.interface import Attribute, Interface


class UtilError(Exception):
    """Base class of every error raised by peak_lite.util."""


class SignalStackError(UtilError):
    """A push or pop of the signal stack could not be done.

    When it is raised, every signal handler is as it was before the call.
    """


class ImportStringError(UtilError, ImportError):
    """An import spec could not be resolved; the message names the spec and the part."""


class LockError(UtilError):
    """A lock or pid file could not be taken or used."""


class AlreadyLocked(LockError):
    """Another live process holds the lock.

    ``pid`` is the holder's pid as read from the file, or ``None`` when unknown.
    """

    def __init__(self, message, pid=None):
        super().__init__(message)
        self.pid = pid


class ILock(Interface):
    """An advisory, non-reentrant lock on some resource."""

    def attempt():
        """Try to take the lock without blocking; return True if now held."""

    def obtain():
        """Take the lock, blocking until it is free.  Returns True."""

    def release():
        """Release a held lock.  Releasing a lock not held raises LockError."""

    def locked():
        """Return True while this object holds the lock."""


class IPidFile(ILock):
    """A pid file guarded by a lock held for the life of the process.

    While held, the file contains the holder's pid followed by a newline.  The
    lock's descriptor is inheritable, so the lock survives ``exec``.
    """

    path = Attribute("The file's path")

    def create():
        """Take the lock and write our pid, or raise AlreadyLocked naming the holder."""

    def adopt(fd):
        """Take over a descriptor that already holds the lock (after ``exec``)."""

    def remove():
        """Remove the file if it still names this process, and release the lock."""

    def readPid():
        """Return the pid written in the file, or None if unreadable or empty."""
