"""The new image's side of the status keeper (see keeper.py): adopt, take over, dismiss.

``holdCarried`` runs right after the exec, before the app preloads;
``Takeover`` once the status listener is open again (``openStatus``).
"""

import json
import logging
import os
import signal
import stat

from peak_lite.running.process import leftoverChildren
from peak_lite.running.procman.status.keeper import KEEPER_ENV, STATUS_CARRY_ENV

log = logging.getLogger('peak_lite.procman')

__all__ = ['holdCarried', 'Takeover', 'HANDOVER_WAIT']

HANDOVER_WAIT = 2.0     # the longest the new image waits for the keeper to stop accepting


def holdCarried(environ):
    """Right after the exec: the carried socket's descriptors, made ours alone while the
    app preloads (whatever it spawns must not hold them), as the app's listeners are.
    The children close their copies (``closeInChild``)."""
    try:
        fds = [int(record[0]) for record in json.loads(environ.get(STATUS_CARRY_ENV) or '[]')]
    except (ValueError, TypeError, IndexError, KeyError):
        fds = []                 # openStatus says so, as it adopts the socket
    keeper = _keeperOf(environ)
    if keeper is not None:
        fds.append(keeper[1])
    held = []
    for fd in fds:
        try:
            os.set_inheritable(fd, False)
        except OSError:
            continue             # not open: openStatus binds afresh
        held.append(fd)
    return held


class Takeover:
    """The new image's side: the keeper our previous self forked, told to go.

    With ``server`` (our status listener's, on ``loop``): it accepts nothing
    until the keeper has stopped accepting (EOF on the pipe, or
    HANDOVER_WAIT), and the keeper is told on the loop's first turn, once
    our loop serves.  Without a server (no StatusListen any more): at once.
    """

    def __init__(self, environ, server=None, loop=None):
        self.fd = self.timer = None
        found = _keeperOf(environ, take=True)
        if found is None:
            return
        pid, fd = found
        if server is None or not _isPipe(fd):
            _closeQuietly(fd)
            _dismiss(pid)
            return
        self.pid, self.fd, self.server, self.loop = pid, fd, server, loop
        server.pause()
        loop.addReader(fd, self._done)
        self.timer = loop.callLater(HANDOVER_WAIT, self._late)
        loop.callLater(0, _dismiss, pid)

    def _late(self):
        log.warning("the status keeper %d still accepts after %gs; the status listener "
                    "serves anyway", self.pid, HANDOVER_WAIT)
        self._done()

    def _done(self):
        if self.fd is None:
            return
        self.timer.cancel()
        self.loop.removeReader(self.fd)
        self.close()
        self.server.resume()

    def close(self):
        """Close our end of the keeper's pipe (in a child forked meanwhile: its copy)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _keeperOf(environ, take=False):
    """(pid, pipe's read end) named by KEEPER_ENV, or None."""
    text = environ.pop(KEEPER_ENV, None) if take else environ.get(KEEPER_ENV)
    if not text:
        return None
    try:
        pid, fd = map(int, text.split(','))
    except ValueError:
        log.warning("ignoring a malformed %s: %r", KEEPER_ENV, text[:50])
        return None
    return pid, fd


def _isPipe(fd):
    try:
        return stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:
        return False


def _closeQuietly(fd):
    try:
        if _isPipe(fd):          # never a descriptor that is something else by now
            os.close(fd)
    except OSError:
        pass


def _dismiss(pid):
    # Only our own child: a stale environment must never make us signal a stranger.
    if pid not in leftoverChildren():
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
