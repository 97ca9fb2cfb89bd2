"""``AccessLog`` and ``AccessLogFormat``: the manager opens the file, the children write it.

The manager opens the file the way it opens ``StdErr`` (never through a
symlink, only a regular file it or ``User`` owns, created 0640 and given to
``User``), on a descriptor number of its own that every child inherits, and
installs the process's ``AccessLog`` (see peak_lite.running.accesslog) before
forking.  ``reopen()`` (SIGUSR1, through ``StdErr.reopen``) opens the path
afresh and moves that descriptor onto it: the manager first, creating the
new file with the right owner, then each child, which by then may only open
what its own user owns.  ``AccessLog -`` writes to stderr (fd 2), which
``StdErr`` already reopens.
"""

import fcntl
import logging
import os

from peak_lite.running.accesslog import FORMATS, AccessLog, setAccessLog
from peak_lite.running.procman import configcheck as check
from peak_lite.running.procman.interfaces import ProcmanError
from peak_lite.util.safefile import openTrusted

log = logging.getLogger('peak_lite.procman')

__all__ = ['AccessLogFile', 'accessLogFormat', 'checkAccessLog']

FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT


def accessLogFormat(text):
    """The ``AccessLogFormat`` converter (see configkeys)."""
    if text.lower() not in FORMATS:
        raise ValueError(f"expected {' or '.join(FORMATS)}, got {text!r}")
    return text.lower()


class AccessLogFile:
    """The access log file of one manager and its children; None path: no access log."""

    def __init__(self, path, fmt='combined'):
        self.path = path
        self.fmt = fmt
        self.user = None
        self.fd = None

    def open(self, cfg):
        """In the manager, before forking: open the file and install the process's log."""
        if self.path is None:
            return
        if self.path == '-':
            self.fd = 2
        else:
            self.user = cfg.uid
            try:
                fd = self._open()
            except _OpenError as e:
                raise cfg.errorAt('AccessLog', str(e)) from None
            # Above the low numbers a child's command may take over (0, 1, 2...);
            # close-on-exec, so that a restart's exec opens it afresh.
            try:
                self.fd = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
            finally:
                os.close(fd)
        setAccessLog(AccessLog(self.fd, self.fmt))

    def _open(self):
        owners = () if self.user is None else (self.user,)
        fd = openTrusted(self.path, FLAGS, 0o640, 'AccessLog', _OpenError, owners)
        try:
            if self.user is not None and os.geteuid() == 0 and os.fstat(fd).st_uid != self.user:
                os.fchown(fd, self.user, -1)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def reopen(self):
        """After a rotation: the same descriptor number, pointing at the path's new file."""
        if self.fd is None or self.path == '-':
            return
        try:
            fd = self._open()
        except (_OpenError, OSError) as e:
            log.error("%s; keeping the old access log file", e)
            return
        try:
            os.dup2(fd, self.fd, inheritable=False)
        finally:
            os.close(fd)


class _OpenError(ProcmanError):
    pass


def checkAccessLog(checker, key, value, lines):
    """``-`` is stderr; a path is checked like ``StdErr``'s (see configkeys)."""
    if value == '-':
        return value
    return check.writablePath(checker, key, value, lines)

