"""Standby children: forked ahead, set up, waiting to be told to serve.

Starting a child of a big preloaded app costs a fork (copying the page
tables of the whole heap) and then the child's first writes to memory it
shares with the manager (a copy-on-write fault per page) before it can
accept: 10 to 20 ms for a 200 MB app, on the path of a repair or of
SIGTTIN.  ``Standby COUNT`` pays that ahead of time.

- The manager keeps COUNT children forked and set up to the last step: the
  gateway has built its workers and registered its listeners, and instead
  of running its loop it blocks reading a pipe of its own
  (``IWorkerStatus.awaitTurn``).  Its scoreboard slot says ``standby``.
- Whenever the pool starts a child (a repair, the floor, SIGTTIN, growth),
  the manager writes one byte to a standby's pipe instead of forking.  The
  child marks itself idle and runs its loop; the pool books it as a child
  started now.
- Another standby is forked ``REFILL_DELAY`` later, so that its fork does
  not compete for the CPU with the child just woken.  A standby that died
  on its own is forked again after a delay that doubles with each such
  death in a row, up to ``BACKOFF_CAP``.
- A standby serves nothing and runs no request code, so it is stopped with
  SIGKILL: at shutdown and before a reload's exec (it holds the old code).
  If the manager dies, the pipe closes and the standby exits by itself.

Standbys are not workers of the pool: they are not in its records, not
counted against ``MaxProcesses``, and never asked to stop for idleness.
Only gateway commands wait for their turn; ``procman`` refuses ``Standby``
with any other ``Command``.
"""

import logging
import os
import time

from peak_lite.running.procman.pool import BACKOFF_CAP

log = logging.getLogger('peak_lite.procman')

__all__ = ['Standbys', 'REFILL_DELAY']

REFILL_DELAY = 0.1      # seconds between waking a standby and forking the next


class _Waiting:
    __slots__ = ('child', 'goW')

    def __init__(self, child, goW):
        self.child = child
        self.goW = goW


class Standbys:
    """The manager's standby children.  See the module docstring.

    ``wanted()`` is False while they must not be forked (the manager is
    ending, the code failed to load, the pool is not ready yet).
    """

    def __init__(self, count, loop, board, tally, wanted=lambda: True):
        self.count = count
        self.loop = loop
        self.board = board
        self.tally = tally
        self.wanted = wanted
        self.waiting = {}            # pid -> _Waiting
        self.gone = {}               # pid -> Child: no longer waiting, not reaped yet
        self.pipe = None             # (goR, goW) of the standby being forked
        self.notBefore = 0.0
        self.deaths = 0              # standbys that died on their own, in a row
        self.timer = None

    def due(self):
        """True if the manager should fork a standby now; else, if one will be
        due, a timer wakes the manager's loop then."""
        if len(self.waiting) >= self.count or not self.wanted():
            return False
        now = time.monotonic()
        if now >= self.notBefore:
            return True
        if self.timer is None or self.timer.cancelled:
            self.timer = self.loop.callAt(self.notBefore, lambda: None)
        return False

    # -- forking one -------------------------------------------------------

    def openPipe(self):
        """Before the fork: the new standby's pipe; its read end is the child's."""
        self.pipe = os.pipe2(os.O_CLOEXEC)
        return self.pipe[0]

    def fds(self):
        """What a new child must close: the write ends of every standby's pipe."""
        fds = [w.goW for w in self.waiting.values()]
        if self.pipe is not None:
            fds.append(self.pipe[1])
        return fds

    def forked(self, child):
        """In the manager, after the fork: ``child`` waits for its turn."""
        goR, goW = self.pipe
        self.pipe = None
        os.close(goR)
        self.waiting[child.pid] = _Waiting(child, goW)
        log.info("standby child %d (worker %d) forked", child.pid, child.number)

    def forkFailed(self):
        """The fork failed: close the pipe, and try again like after a death."""
        for fd in self.pipe:
            os.close(fd)
        self.pipe = None
        self._backOff()

    # -- waking one --------------------------------------------------------

    def wake(self):
        """The record of a standby told to serve now (its ``startedAt`` now), or None."""
        while self.waiting:
            pid, waiting = self.waiting.popitem()
            child = waiting.child
            try:
                os.write(waiting.goW, b'g')
            except BrokenPipeError:
                self.gone[pid] = child      # it died; its exit is still to be reaped
                continue
            finally:
                os.close(waiting.goW)
            self.deaths = 0
            self.notBefore = max(self.notBefore, time.monotonic() + REFILL_DELAY)
            child.startedAt = child.lastChange = time.monotonic()
            log.info("standby child %d (worker %d) woken", pid, child.number)
            return child
        return None

    # -- exits and stopping -------------------------------------------------

    def owns(self, proxy):
        return proxy.pid in self.waiting or proxy.pid in self.gone

    def exited(self, proxy):
        """A standby was reaped: count it, free its slot."""
        waiting = self.waiting.pop(proxy.pid, None)
        if waiting is not None:
            os.close(waiting.goW)
            child = waiting.child
        else:
            child = self.gone.pop(proxy.pid)
        self.tally.exited(child, self.board)
        self.board.clear(child.slot)
        if child.stopStage is None:
            log.warning("standby child %d %s; another is forked in %.1fs", child.pid,
                        proxy.describeExit(), self._backOff())

    def killAll(self, reason):
        """SIGKILL every standby (see the module docstring); their exits are reaped later."""
        for pid, waiting in list(self.waiting.items()):
            del self.waiting[pid]
            os.close(waiting.goW)
            child = waiting.child
            child.stopStage, child.stopReason = 'KILL', reason
            child.proxy.sendSignal('SIGKILL')
            self.gone[pid] = child

    def pending(self):
        """Standbys still to be reaped (waiting, or killed and not yet gone)."""
        return len(self.waiting) + len(self.gone)

    def _backOff(self):
        self.deaths += 1
        delay = min(REFILL_DELAY * 2 ** self.deaths, BACKOFF_CAP)
        self.notBefore = time.monotonic() + delay
        return delay
