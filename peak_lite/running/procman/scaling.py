"""Load-driven decisions of the manager: scale up, scale down, recycle, time out.

``Scaling`` is mixed into the Manager: these methods run as main-loop
callbacks and act through the manager's pool methods (startSoon,
stopChild).  What to do is computed by ``policy``.
"""

import logging
import os
import select
import time

from peak_lite.running.procman import policy

log = logging.getLogger('peak_lite.procman')

__all__ = ['Scaling', 'TICK']

TICK = 1.0              # seconds between housekeeping rounds: an idle manager wakes ~1/s


class Scaling:
    """The manager's housekeeping tick, BusyStarter rules and the all-busy wakeup."""

    def tick(self):
        """Housekeeping, once a second: reap, scale down, recycle, time out, report."""
        loop = self.mainLoop.eventLoop
        loop.call_later(TICK, self.tick)
        self.reap()
        if self.shutdown:
            return
        self.refresh()
        now = wallNow = time.monotonic()     # the scoreboard's clock: see scoreboard.py
        if self.quickDeaths and any(now - c.startedAt >= policy.QUICK_DEATH for c in self.liveChildren()):
            self.quickDeaths = 0     # a child survived: the crash streak is over
        for child in self.liveChildren():
            if policy.overdue(child, self.cfg.RequestTimeout, wallNow):
                log.error("child %d has been busy on one request for %.1fs (RequestTimeout "
                          "%.1fs); killing it", child.pid, wallNow - child.lastChange,
                          self.cfg.RequestTimeout)
                self.stopChild(child, 'request timeout', quick=True)
                self.owed += 1
        self.recycle()
        if not any(c.stopReason == 'idle' for c in self.children.values()):
            victim = policy.idleVictim(self.liveChildren(), self.floor,
                                       self.cfg.IdleTimeout, now, wallNow)
            if victim is not None:
                log.info("child %d idle for %.1fs (IdleTimeout %.1fs), %d running above "
                         "the floor of %d: stopping it", victim.pid,
                         wallNow - victim.lastChange, self.cfg.IdleTimeout,
                         len(self.liveChildren()), self.floor)
                self.stopChild(victim, 'idle')
        self.runDueRules(now)
        if self._everyChildBusy() and self._connectionPending():
            log.info("every child is busy and a connection is waiting: starting one more")
            self.startSoon()
        self.maintain()
        self.notifier.status(self.statusText())
        self.board.armWake(len(self.liveChildren()) < self.cfg.MaxProcesses)

    def recycle(self):
        """Stop the children that reached their request limit, one replacement each.

        At or below the floor the replacement is forked first and the old
        child stopped right after, so the pool never dips under the floor.
        """
        for child in self.liveChildren():
            if child.replacing:
                if self.startTimer is None:     # its replacement could not start
                    self.stopChild(child, child.replacing)
                continue
            if not policy.recycleDue(child):
                continue
            reason = f'recycled after {child.requests} requests (limit {child.limit})'
            self.owed += 1
            if len(self.liveChildren()) - self._replacing() > self.floor:
                self.stopChild(child, reason)
            else:
                child.replacing = reason
                self.startSoon()

    def _replacing(self):
        return sum(1 for c in self.liveChildren() if c.replacing)

    def statusText(self):
        counts = self.board.counts()
        return f"{counts['busy']} busy, {counts['idle']} idle, {len(self.children)} total"

    def _everyChildBusy(self):
        return policy.shouldStartForBusy([c.state for c in self.liveChildren()], self.cfg)

    def runDueRules(self, now):
        """Run the tick-driven BusyStarter rules that are due, higher priority first."""
        for rule in self.cfg.busyStarters:
            due = self.rulesDue.get(rule)
            if due is None or now < due:
                continue
            self.rulesDue[rule] = max(due + rule.RunEvery, now)
            self._applyRule(rule)

    def busyRule(self, rule):
        self.mainLoop.eventLoop.call_later(rule.RunEvery, self.busyRule, rule)
        if self.shutdown:
            return
        self.refresh()
        self._applyRule(rule)

    def _applyRule(self, rule):
        """The BusyStarter rule: every child busy and room left, so start one more."""
        if self._everyChildBusy():
            log.info("every child is busy: starting one more (BusyStarter, priority %d)",
                     rule.Priority)
            self.startSoon()

    def allBusy(self):
        """A child woke us: it reached its request limit, or found every child busy.

        Recycle what is due; start one more if every child is busy and a
        connection waits.
        """
        try:
            while os.read(self.wakeR, 512):
                pass
        except BlockingIOError:
            pass
        if self.shutdown:
            return
        self.refresh()
        self.recycle()
        if len(self.liveChildren()) >= self.cfg.MaxProcesses:
            return
        if self._connectionPending():
            log.info("every child is busy and a connection is waiting: starting one more")
            self.startSoon()
            self.board.armWake(True)
        # Otherwise the next tick re-arms: at most one such wakeup a second.

    def _connectionPending(self):
        fds = self.listeners.fds()
        return bool(fds) and bool(select.select(fds, [], [], 0)[0])

    def changeFloor(self, delta):
        """SIGTTIN / SIGTTOU: raise or lower the floor by one, between 1 and MaxProcesses."""
        floor = min(max(self.floor + delta, 1), self.cfg.MaxProcesses)
        log.info("floor %d -> %d", self.floor, floor)
        self.floor = floor
        self.refresh()
        victim = policy.floorVictim(self.liveChildren(), floor, self.cfg.IdleTimeout,
                                    time.monotonic())
        if victim is not None:
            self.stopChild(victim, 'floor lowered')
        self.maintain()
