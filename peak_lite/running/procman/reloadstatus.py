"""The outcome of each reload, published beside the pid file for ``--reload`` to read.

SIGHUP carries no answer, so the manager writes one: ``PIDFILE.reload``
holds one JSON line,

    {"pid": 123, "requests": 4, "covers": 4, "result": "accepted", "reason": null}

``requests`` counts the SIGHUPs this manager has acted on (the count is
written before a check starts, so it survives the restart's exec); each
finished check records ``covers``, the count when it began, its ``result``
('accepted' or 'refused') and the ``reason`` for a refusal.  A client reads
``requests`` (R) before it sends SIGHUP; the first outcome with ``covers`` > R
came from a check that started after that, so it has seen the client's new
files.  The file is written in place (truncate, write), 0644, and opened like
the pid file: never through a symlink, and only if owned by the manager's user.
"""

import json
import os

from peak_lite.util.interfaces import LockError
from peak_lite.util.safefile import openTrusted

__all__ = ['ReloadStatus', 'readReloadStatus', 'statusPath']

SUFFIX = '.reload'


def statusPath(pidfilePath):
    return pidfilePath + SUFFIX


class ReloadStatus:
    """The manager's side: count the reload requests and publish each outcome."""

    def __init__(self, pidfilePath, log):
        self.path = None if pidfilePath is None else statusPath(pidfilePath)
        self.log = log
        self.pid = os.getpid()
        self.requests = 0
        self.covers = None
        if self.path is not None:
            last = readReloadStatus(self.path)
            if last is not None and last.get('pid') == self.pid:
                self.requests = last.get('requests', 0)   # the same manager, after its exec
                self.covers = last.get('covers')

    def requested(self):
        """A SIGHUP reached the loop; return the count a check starting now covers."""
        self.requests += 1
        self._write(dict(covers=self.covers))
        return self.requests

    def checking(self):
        """A check starts now: remember what it covers."""
        self.covers = self.requests

    def switching(self):
        """The check passed and the manager execs: the new image will call ``done``."""
        self._write(dict(covers=self.covers, result=None, reason=None))

    def done(self, ok, reason=None):
        """The check that began last has finished."""
        self._write(dict(covers=self.covers, result='accepted' if ok else 'refused',
                         reason=reason))

    def _write(self, fields):
        if self.path is None:
            return
        record = dict(pid=self.pid, requests=self.requests, **fields)
        data = (json.dumps(record) + '\n').encode()
        try:
            fd = openTrusted(self.path, os.O_RDWR | os.O_CREAT, 0o644, 'reload status',
                             LockError)
        except LockError as e:
            self.log.error("%s; --reload cannot report this outcome", e)
            return
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        finally:
            os.close(fd)

    def remove(self):
        """At the manager's final exit."""
        if self.path is None:
            return
        last = readReloadStatus(self.path)
        if last is not None and last.get('pid') == self.pid:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


def readReloadStatus(path):
    """The last record in ``path`` as a dict, or None (missing, being written, not ours)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.pread(fd, 4096, 0)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        record = json.loads(data)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
