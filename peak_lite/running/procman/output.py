"""Where the manager's and children's stderr goes, and logging to it."""

import logging
import os
import signal
import sys

from peak_lite.running.procman.interfaces import ConfigError

__all__ = ['StdErr', 'setupLogging']


class StdErr:
    """Owns fd 2 when ``StdErr`` is set: points it at the file, in append mode.

    ``reopen()`` (on SIGUSR1, after a logrotate-style rename) opens the path
    afresh and moves fd 2 onto it.  Children share the open file until they
    are told to reopen too.
    """

    def __init__(self, path):
        self.path = path

    def point(self, cfg=None):
        if self.path is None:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o640)
        except OSError as e:
            message = f"StdErr {self.path}: cannot open for appending: {e.strerror}"
            if cfg is not None:
                raise cfg.errorAt('StdErr', message) from None
            raise ConfigError(message, self.path) from None
        sys.stderr.flush()
        os.dup2(fd, 2)
        os.close(fd)

    def reopen(self):
        try:
            self.point()
        except ConfigError as e:
            logging.getLogger('peak_lite.procman').error("%s; keeping the old file", e.message)


    def installChildHandler(self):
        """In a child: SIGUSR1 reopens the file (and is harmless without one)."""
        signal.signal(signal.SIGUSR1, lambda signum, frame: self.reopen())


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
