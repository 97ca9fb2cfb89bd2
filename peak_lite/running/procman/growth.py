"""Growth on load: when every child is busy, whether one more should start.

Part of the pool (see pool.py), given it explicitly.  Two paths ask the pool
for one more child; the pool paces the start (``StartInterval``):

- *pending connections*: a child that takes a request and finds every child
  busy writes one byte to the manager's wake pipe, but only while the
  scoreboard's wake flag is armed, and that write spends the flag.  The
  manager drains the pipe and calls ``woke()`` then ``look()``;
- *the BusyStarter rules*, timed only while every child is busy.

The wake flag is re-armed at most once per ``REARM`` after a child used it:
a pool that keeps brushing against all-busy must not wake the manager per
request.  While every child stays busy (*warm*) the pool is looked at again
without the flag, by timers.
"""

import logging
import select
import time

from zope.interface import implementer

from peak_lite.running.procman.interfaces import IGrowth

log = logging.getLogger('peak_lite.procman')

__all__ = ['Growth', 'REARM']

REARM = 1.0             # an unproductive all-busy wakeup re-arms after this long


@implementer(IGrowth)
class Growth:
    """See IGrowth and the module docstring."""

    def __init__(self, cfg, loop, board, listeners, policy, pool, ending):
        self.cfg = cfg
        self.loop = loop
        self.board = board
        self.listeners = listeners
        self.policy = policy
        self.pool = pool
        self.ending = ending
        self.warm = False            # every child was busy at the last look
        self.lastWake = float('-inf')  # a child's last all-busy wakeup
        self.armTimer = None
        self.ruleTimers = []

    def woke(self):
        """See IGrowth."""
        self.lastWake = time.monotonic()

    def armWake(self):
        """See IGrowth."""
        self.board.armWake(len(self.pool.live()) < self.cfg.MaxProcesses)

    def look(self):
        """See IGrowth."""
        if not self.policy.wantsGrowth(self.pool.live(), len(self.pool.records())):
            self._cool()
            return
        if self.connectionPending():
            log.info("every child is busy and a connection is waiting: starting one more")
            self.pool.wantGrowth()
            self.board.armWake(True)
        else:
            self._rearm()
        self._warm()

    def connectionPending(self):
        """See IGrowth."""
        fds = self.listeners.fds()
        return bool(fds) and bool(select.select(fds, [], [], 0)[0])

    def _warm(self):
        """Every child is busy: poll (1/s and each rule's RunEvery) until that ends."""
        if self.warm:
            return
        self.warm = True
        self.ruleTimers = [self.loop.callLater(REARM, self._poll)]
        for rule in self.cfg.busyStarters:
            self.ruleTimers.append(self.loop.callLater(rule.RunEvery, self._rule, rule))

    def _cool(self):
        """Not every child is busy: no polling; the scoreboard's wake tells us when."""
        self.warm = False
        for timer in self.ruleTimers:
            timer.cancel()
        self.ruleTimers = []
        self._rearm()

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

    def _poll(self):
        if self.ending() or not self.warm:
            return
        self.ruleTimers = [t for t in self.ruleTimers if not t.cancelled]
        self.ruleTimers.append(self.loop.callLater(REARM, self._poll))
        self.pool.refresh()
        self.look()

    def _rule(self, rule):
        """The BusyStarter rule: every child busy and room left, so start one more."""
        if self.ending() or not self.warm:
            return
        self.ruleTimers.append(self.loop.callLater(rule.RunEvery, self._rule, rule))
        self.pool.refresh()
        if self.policy.wantsGrowth(self.pool.live(), len(self.pool.records())):
            log.info("every child is busy: starting one more (BusyStarter, priority %d)",
                     rule.Priority)
            self.pool.wantGrowth()
