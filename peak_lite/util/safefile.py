"""Opening the files a root process writes without trusting the path: pid file, logs,
shared memory.

No rename, symlink or FIFO planted at the path may make the process write
somewhere else, hang in ``open``, or share a file someone else controls.
"""

import errno
import os
import stat

__all__ = ['openTrusted', 'checkTrusted']


def openTrusted(path, flags, mode, what, error, owners=()):
    """Open ``path`` with ``flags`` (O_CREAT creates it with ``mode``) and check it.

    Never follows a symlink in the last component, never blocks on a FIFO
    (O_NONBLOCK, cleared again on the returned descriptor) and refuses what
    ``checkTrusted`` refuses.  ``what`` names the setting in messages (for
    example 'StdErr'); failures raise ``error(message)``.
    """
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise error(f"{what} {path}: is a symlink; refusing to follow it: remove it "
                        f"or choose another path") from None
        if e.errno == errno.ENXIO:        # a FIFO nobody reads: O_NONBLOCK said so
            raise error(f"{what} {path}: is not a regular file: remove it or choose "
                        f"another path") from None
        raise error(f"{what} {path}: cannot open: {e.strerror}") from None
    try:
        checkTrusted(fd, path, what, error, owners)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def checkTrusted(fd, path, what, error, owners=()):
    """Raise ``error(message)`` unless open ``fd`` is a file the process may trust.

    That is a regular file, owned by this process's effective user (or by one
    of the uids in ``owners``), that neither its group nor others may write.
    Checked on the open descriptor, so nothing swapped in at the path after
    the check can fool it.  Returns the ``os.stat_result``.
    """
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {path}: is not a regular file: remove it or choose another path")
    me = os.geteuid()
    if st.st_uid != me and st.st_uid not in owners:
        raise error(f"{what} {path}: is owned by uid {st.st_uid}, not by uid {me} that "
                    f"runs the manager: remove it, or chown it to uid {me}")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = 'others' if st.st_mode & stat.S_IWOTH else 'its group'
        raise error(f"{what} {path}: is writable by {who} (mode "
                    f"{stat.S_IMODE(st.st_mode):04o}): remove it, or 'chmod go-w' it")
    return st
