"""Growth on load: when every child is busy, whether one more should start, and when
to look again.

Part of the pool (see pool.py), given it explicitly.  Two paths ask the pool
for one more child, which it then starts:

- *pending connections*: every child busy and a connection waiting on a
  listening socket, or in the children's shared queue (``IWaitingWork``:
  the gateways' hand-off queue, where a request sent down a kept-alive
  connection of a busy child waits for an idle one);
- *the BusyStarter rules*, timed only while every child is busy.

Nothing here runs per request.  While not every child is busy (*cool*), the
manager sleeps: a child that takes a request and finds every child busy
writes one byte to the manager's wake pipe, but only while the scoreboard's
wake flag is armed, and that write spends the flag.  The flag is re-armed
at most once per ``REARM`` after a child used it, so a pool that keeps
brushing against all-busy cannot wake the manager per request.

While every child is busy (*warm*) the flag stays spent, and the manager
looks again by itself, at the first moment a start could follow:

- before ``StartInterval`` has passed since the last growth start (or a
  backoff ends), at that moment: looking sooner could not start anything,
  and looking later would waste the pacing.  A connection seen waiting
  meanwhile counts then, if every child is still busy;
- once a start could follow but no connection waits, ``SETTLE`` after one
  arrives: the listening sockets are watched, once, and at most once per
  ``REARM`` (a pool with as many busy clients as children and no backlog
  would otherwise wake the manager per connection);
- when a connection waits but one child is not busy, ``SETTLE`` later: a
  child between two requests looks idle for an instant, and one look must
  not take a saturated pool for a pool with room (a few times at most);
- in any case at least once per ``REARM``.

A start follows only when every child is busy and a connection waits (or
waited, above) on two looks ``SETTLE`` apart: a child that has just answered
reads busy for an instant, and its client may already be back.
"""

import logging
import select
import time

from zope.interface import implementer

from peak_lite.running.procman.interfaces import IGrowth

log = logging.getLogger('peak_lite.procman')

__all__ = ['Growth', 'REARM']

REARM = 1.0             # the wake flag re-arms this long after a child used it; the
                        # slowest look while every child stays busy
SETTLE = 0.02           # a look that found a child between two requests looks again
SETTLE_TRIES = 5        # this often in a row at most, then the pool is not all busy


@implementer(IGrowth)
class Growth:
    """See IGrowth and the module docstring."""

    def __init__(self, cfg, loop, board, listeners, policy, pool, ending, waiting=()):
        self.cfg = cfg
        self.loop = loop
        self.board = board
        self.listeners = listeners
        self.waiting = list(waiting)   # the children's shared queue (IWaitingWork)
        self.policy = policy
        self.pool = pool
        self.ending = ending
        self.warm = False            # every child was busy at the last look
        self.lastWake = float('-inf')  # a child's last all-busy wakeup
        self.armTimer = None
        self.lookTimer = None
        self.ruleTimers = []
        self.watched = []            # listening fds watched for a connection
        self.settling = 0            # looks in a row that found a child between requests
        self.waited = False          # a connection waited, every child busy, before due
        self.confirming = False      # every child busy and a connection waiting, once
        self.lastWatch = float('-inf')

    def woke(self):
        """See IGrowth."""
        self.lastWake = time.monotonic()

    def armWake(self):
        """See IGrowth."""
        self.board.armWake(len(self.pool.live()) < self.cfg.MaxProcesses)

    def look(self):
        """See IGrowth."""
        self._unwatch()
        now, due = time.monotonic(), self.pool.growthDue()
        live, total = self.pool.live(), len(self.pool.records())
        if not self.policy.wantsGrowth(live, total):
            self.confirming = False
            if (self.settling < SETTLE_TRIES and now >= due
                    and total < self.cfg.MaxProcesses and self.connectionPending()):
                # A child between two requests (or just started) will take the waiting
                # connection in a moment: whether every child is busy then decides.
                self.settling += 1
                self._lookAt(now + SETTLE, replace=True)
                return
            self._cool()
            return
        self.settling = 0
        self._warm()
        if now < due:
            # Nothing could start sooner.  A connection waiting now counts then, if
            # every child is still busy: by then it may have been taken, and the
            # requests behind it may wait where no listening socket shows them (on
            # kept-alive connections).
            self.confirming = False
            self.waited = self.waited or self.connectionPending()
            self._lookAt(due)
            return
        pending = self.connectionPending()
        if (pending or self.waited) and not self.confirming:
            # Seen once: a child that has just answered reads busy for an instant,
            # and its client may be back already.  Still so SETTLE later: load.
            self.confirming = True
            self._lookAt(now + SETTLE, replace=True)
            return
        self.confirming = False
        if pending:
            log.info("every child is busy and a connection is waiting: starting one more")
            self.pool.wantGrowth()   # the start moves the next look (see grew())
        elif self.waited:
            log.info("every child is busy and a connection was waiting: starting one more")
            self.pool.wantGrowth()
        elif now >= self.lastWatch + REARM:
            self._watch()            # once per REARM: a pool saturated without a
                                     # backlog must not wake us per connection
        self.waited = False
        self._lookAt(now + REARM)

    def grew(self):
        """See IGrowth."""
        if self.warm:
            self._lookAt(self.pool.growthDue())

    def connectionPending(self):
        """See IGrowth."""
        fds = self._pendingFds()
        return bool(fds) and bool(select.select(fds, [], [], 0)[0])

    def _pendingFds(self):
        """Where a connection waits for a child: the listening sockets, the shared queue."""
        return self.listeners.fds() + self.waiting

    # -- warm: every child busy ---------------------------------------------

    def _warm(self):
        """Every child is busy: time the BusyStarter rules until that ends."""
        if self.warm:
            return
        self.warm = True
        for rule in self.cfg.busyStarters:
            self.ruleTimers.append(self.loop.callLater(rule.RunEvery, self._rule, rule))

    def _cool(self):
        """Not every child is busy: no timer, no watch; the scoreboard's wake tells us."""
        self.warm = False
        self.settling = 0
        self.waited = False
        self.confirming = False
        self._unwatch()
        for timer in self.ruleTimers:
            timer.cancel()
        self.ruleTimers = []
        if self.lookTimer is not None:
            self.lookTimer.cancel()
            self.lookTimer = None
        self._rearm()

    def _lookAt(self, when, replace=False):
        """The next look, at ``when`` or sooner if one is already due sooner."""
        timer = self.lookTimer
        if timer is not None and not timer.cancelled:
            if timer.when <= when and not replace:
                return
            timer.cancel()
        self.lookTimer = self.loop.callAt(when, self._timedLook)

    def _timedLook(self):
        self.lookTimer = None        # (cancelled when the pool cools)
        if self.ending():
            return
        self.pool.refresh()
        self.look()

    def _watch(self):
        """Look again as soon as a connection arrives on a listening socket or in the
        shared queue: once."""
        self.lastWatch = time.monotonic()
        self.watched = self._pendingFds()
        for fd in self.watched:
            self.loop.addReader(fd, self._arrived)

    def _unwatch(self):
        for fd in self.watched:
            self.loop.removeReader(fd)
        self.watched = []

    def _arrived(self):
        """A connection arrived while every child was busy: look ``SETTLE`` later.

        A connection that waits counts, not one taken at once: a child that was
        just killed still reads busy until it is reaped (its SIGCHLD comes once
        the kernel has torn it down), and its repair, not growth, is what the
        connection needs."""
        self._unwatch()              # the connection stays queued: never spin on it
        if self.ending() or not self.warm:
            return
        self._lookAt(time.monotonic() + SETTLE, replace=True)

    # -- cool: the scoreboard's wake --------------------------------------------

    def _rearm(self):
        """Arm the scoreboard's wake, at most once per REARM after a child used it: a
        pool that keeps brushing against all-busy must not wake us per request."""
        if self.armTimer is not None:
            self.armTimer.cancel()
            self.armTimer = None
        room = len(self.pool.live()) < self.cfg.MaxProcesses
        at = self.lastWake + REARM
        if not room or time.monotonic() >= at:
            self.board.armWake(room)
        else:
            self.armTimer = self.loop.callAt(at, self._rearm)

    def _rule(self, rule):
        """The BusyStarter rule: every child busy and room left, so start one more."""
        if self.ending() or not self.warm:
            return
        self.ruleTimers = [t for t in self.ruleTimers if not t.cancelled]
        self.ruleTimers.append(self.loop.callLater(rule.RunEvery, self._rule, rule))
        self.pool.refresh()
        if self.policy.wantsGrowth(self.pool.live(), len(self.pool.records())):
            log.info("every child is busy: starting one more (BusyStarter, priority %d)",
                     rule.Priority)
            self.pool.wantGrowth()
