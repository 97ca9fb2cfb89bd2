"""Logging and stderr: where the manager's and children's fd 2 goes, and logging to it."""

import logging
import os
import signal
import sys

from peak_lite.running.procman.accesslog import AccessLogFile
from peak_lite.running.procman.interfaces import ConfigError
from peak_lite.util.safefile import openTrusted

__all__ = ['StdErr', 'setupLogging']


class StdErr:
    """Owns fd 2 when ``StdErr`` is set: points it at the file, in append mode.

    The file is opened like every file the manager trusts: never through a
    symlink, never blocking on a FIFO, and only a regular file owned by the
    manager's user (or by ``User``) that its group and others cannot write;
    a new file is created 0640.  With ``User``, the manager gives the file to
    that user (``fchown`` on the open descriptor, as nginx does with its
    logs), so that children, which have dropped their privileges, can reopen
    it after a rotation.

    ``reopen()`` (on SIGUSR1, after a logrotate-style rename) opens the path
    afresh and moves fd 2 onto it: the manager first, creating the new file,
    then each child, which the manager signals after it has reopened.

    ``AccessLog`` is a log file too: ``point(cfg)`` opens it (see
    accesslog.AccessLogFile) and ``reopen()`` reopens it, on the same path.
    """

    def __init__(self, path):
        self.path = path
        self.user = None             # uid the file is given to, with User
        self.accessLog = None

    def point(self, cfg=None):
        if cfg is not None and self.accessLog is None:
            self.accessLog = AccessLogFile(cfg.AccessLog, cfg.AccessLogFormat)
            self.accessLog.open(cfg)
        if self.path is None:
            return
        if cfg is not None:
            self.user = cfg.uid
        owners = () if self.user is None else (self.user,)
        try:
            fd = openTrusted(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640,
                             'StdErr', _OpenError, owners)
        except _OpenError as e:
            if cfg is not None:
                raise cfg.errorAt('StdErr', str(e)) from None
            raise ConfigError(str(e), self.path) from None
        try:
            if self.user is not None and os.geteuid() == 0 and os.fstat(fd).st_uid != self.user:
                os.fchown(fd, self.user, -1)
            sys.stderr.flush()
            os.dup2(fd, 2)
        finally:
            os.close(fd)

    def reopen(self):
        if self.accessLog is not None:
            self.accessLog.reopen()
        try:
            self.point()
        except (ConfigError, OSError) as e:
            logging.getLogger('peak_lite.procman').error(
                "%s; keeping the old file", getattr(e, 'message', None) or e)

    def installChildHandler(self):
        """In a child: SIGUSR1 reopens the file (and is harmless without one)."""
        signal.signal(signal.SIGUSR1, lambda signum, frame: self.reopen())


class _OpenError(Exception):
    pass


class _Formatter(logging.Formatter):
    def __init__(self, who):
        super().__init__('%(asctime)s [%(process)d] %(levelname)s ' + who + ': %(message)s')


def setupLogging(who='procman', level=logging.INFO):
    """Log to fd 2 (whatever it points at now), one line per record."""
    root = logging.getLogger('peak_lite')
    for h in list(root.handlers):
        if getattr(h, '_procman', False):
            root.removeHandler(h)
    handler = logging.StreamHandler(_Fd2())
    handler._procman = True
    handler.setFormatter(_Formatter(who))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    return handler


class _Fd2:
    """A stream writing straight to fd 2, so a reopened StdErr is followed at once."""

    def write(self, text):
        data = text.encode('utf-8', 'replace')
        while data:
            try:
                n = os.write(2, data)
            except InterruptedError:
                continue
            except OSError:
                return
            data = data[n:]

    def flush(self):
        pass
