"""The pool's bookkeeping: when to start, whom to stop, and when to look again.

``Pool`` is the Manager's base: it owns the pool's counters (the floor, the
repairs owed, the growth wanted, the backoff) and acts on ``scaling.Policy``'s
decisions.  It never forks: ``startDue()`` only says whether the manager
should fork now, and arms a timer for when it will be due.
"""

import logging
import os
import select
import signal
import time

from peak_lite.running.procman import memory, policy, scaling
from peak_lite.running.procman.guards import Guards
from peak_lite.running.procman.scoreboard import STARTING

log = logging.getLogger('peak_lite.procman')

__all__ = ['Pool']

READY_POLL = 0.02       # while the first children boot, before READY=1
REARM = 1.0             # an unproductive all-busy wakeup re-arms after this long
QUICK_DEATH = policy.QUICK_DEATH
BACKOFF_CAP = 30.0
# A young child that died of one of these was killed from outside, not crashed.
KILLED_BY = {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT}


class Pool(Guards):
    """See the module docstring.  Expects the Manager's cfg, loop, board, children,
    notifier, listeners, shutdown and wakeR."""

    def __init__(self):
        self.policy = scaling.Policy(self.cfg)
        self.floor = self.cfg.MinProcesses
        self.owed = 0                # repairs: start at once
        self.grow = 0                # growth above the floor: paced by StartInterval
        self.lastStart = float('-inf')
        self.lastGrowth = float('-inf')    # the last start above the floor
        self.startingGrowth = False
        self.quickDeaths = 0
        self.forkFailures = 0
        self.notBefore = 0.0         # backoff: no start before this monotonic time
        self.startTimer = None
        self.checkTimer = None
        self.rulesWarm = False       # every child was busy at the last look
        self.lastWake = float('-inf')  # a child's last all-busy wakeup
        self.armTimer = None
        self.ruleTimers = []
        self.readySent = False
        self.stoppingSent = False
        if self.cfg.MaxMemory:
            self.loop.callLater(memory.MEMORY_CHECK_EVERY, self._memoryCheck)

    # -- the pool --------------------------------------------------------

    def liveChildren(self):
        return [c for c in self.children.values() if c.stopStage is None]

    def refresh(self):
        """Copy each child's slot into its record."""
        for child in self.children.values():
            pid, state, requests, lastChange, _ = self.board.read(child.slot)
            if pid == child.pid and lastChange > 0:     # never a slot caught mid-write
                child.state, child.requests, child.lastChange = state, requests, lastChange

    def overlapping(self):
        """A reload's new generation is starting while the old one still serves."""
        return self.old is not None and not self.readySent

    def target(self):
        if self.readySent:
            return self.floor
        if self.overlapping():
            # The bound of a reload: the old generation plus Prefork new children.
            return max(1, self.cfg.Prefork)
        return max(self.cfg.Prefork, self.floor)

    def startDue(self):
        """True if the manager should fork one child now; else arm a timer for when."""
        if self.shutdown or self.subject is None:
            return False             # (None: a reload's code failed to load; see Manager)
        live = self.liveChildren()
        total = len(self.children)
        replacing = sum(1 for c in live if c.replacing)
        floor = min(self.floor, self.target()) if self.overlapping() else self.floor
        if self.overlapping() and total >= self.target():
            return False             # a crashed new child's exit will call maintain()
        urgent = self.owed or len(live) - replacing < min(floor, self.cfg.MaxProcesses)
        prefork = len(live) < self.target()
        if not (urgent or prefork or (self.grow and self.readySent)):
            return False
        cap = self.cfg.MaxProcesses + (1 if urgent else 0)
        if total >= cap or len(live) - replacing >= self.cfg.MaxProcesses:
            if not urgent:
                self.grow = 0
            return False             # a stopping child's exit will call maintain()
        now = time.monotonic()
        due = self.notBefore        # crash streak or failed forks (see childGone, forkFailed)
        if not urgent:
            due = max(due, self.lastGrowth + self.cfg.StartInterval)
        if now >= due:
            self.startingGrowth = not urgent
            return True
        if self.startTimer is None or self.startTimer.cancelled or self.startTimer.when > due:
            if self.startTimer is not None:
                self.startTimer.cancel()
            self.startTimer = self.loop.callAt(due, self.maintain)
        return False

    def started(self, child):
        """A child was forked: book it, and stop the child it replaces."""
        self.lastStart = time.monotonic()
        if self.startingGrowth:
            self.lastGrowth = self.lastStart
        self.children[child.pid] = child
        self.reaper.track(child.proxy)
        if self.forkFailures:
            log.info("forks work again after %d failed", self.forkFailures)
            self.forkFailures = 0
        if self.startingGrowth:
            self.grow = max(0, self.grow - 1)
        elif self.owed:
            self.owed -= 1
        log.info("started child %d (worker %d)", child.pid, child.number)
        if self.quickDeaths:
            self.loop.callAt(self.lastStart + QUICK_DEATH, self._streakCheck, child)
        old = next((c for c in self.liveChildren() if c.replacing), None)
        if old is not None:
            self.stopChild(old, old.replacing)
        if self.readySent:
            self.board.armWake(len(self.liveChildren()) < self.cfg.MaxProcesses)
        self.maintain()

    def _streakCheck(self, child):
        if self.quickDeaths and child.proxy.isRunning:
            self.quickDeaths = 0     # a child survived: the crash streak is over

    def maintain(self):
        """Re-plan after any change: READY=1, housekeeping's next look, notify STATUS."""
        if self.shutdown:
            return
        if not self.readySent and len(self.liveChildren()) >= self.target():
            self._readyCheck()
        self.housekeeping()

    def _readyCheck(self):
        """Tell systemd READY=1 once the first children have left the starting state."""
        if self.shutdown or self.readySent:
            return
        if len(self.liveChildren()) < self.target():
            return                   # a child died meanwhile: maintain() looks again
        self.refresh()
        if any(c.state == STARTING for c in self.liveChildren()):
            self.loop.callLater(READY_POLL, self._readyCheck)
            return
        self.readySent = True
        if self._connectionPending():
            # Connections queued while the pool was down (a restart's gap) are
            # worked off for StartInterval before that backlog can grow the pool.
            self.lastGrowth = time.monotonic()
        self.board.armWake(len(self.liveChildren()) < self.cfg.MaxProcesses)
        log.info("ready: %d children", len(self.liveChildren()))
        if self.old is None:         # after a reload: once the old generation is gone
            self.sendReady()
        self.generationReady()

    def sendReady(self):
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notifier.send('READY=1', f'MAINPID={self.pid}', f'MONOTONIC_USEC={usec}',
                           f'STATUS={self.statusText()}')

    def stopChild(self, child, reason, quick=False):
        """Graceful: HUP, TERM after StopTimeout, KILL after KillTimeout.  Quick: TERM, KILL."""
        if child.stopStage is not None:
            return
        child.stopReason = reason
        child.stopAskedAt = time.monotonic()
        self.board.markStopping(child.slot)
        self._signalChild(child, 'TERM' if quick else 'HUP')

    def _signalChild(self, child, stage):
        child.stopStage = stage
        if not child.proxy.sendSignal(f'SIG{stage}'):
            return
        delay = {'HUP': self.cfg.StopTimeout, 'TERM': self.cfg.KillTimeout}.get(stage)
        if delay is not None:
            self.loop.callLater(delay, self._escalate, child, stage)

    def _escalate(self, child, stage):
        if not child.proxy.isRunning or child.stopStage != stage:
            return
        following = 'TERM' if stage == 'HUP' else 'KILL'
        log.warning("child %d still running %.1fs after SIG%s; sending SIG%s", child.pid,
                    self.cfg.StopTimeout if stage == 'HUP' else self.cfg.KillTimeout, stage,
                    following)
        self._signalChild(child, following)

    def childGone(self, child, proxy):
        """Book a reaped child: a crash streak's backoff, or a repair owed."""
        age = time.monotonic() - child.startedAt
        how = proxy.describeExit()
        if child.stopStage is not None:
            log.info("child %d %s (%s)", child.pid, how, child.stopReason)
        elif age < QUICK_DEATH and not child.requests:
            self.quickDeaths += 1
            if self.quickDeaths == 1 and proxy.exitSignal in KILLED_BY:
                # Killed from outside, once: a repair, not yet a crash streak.
                log.warning("child %d %s %.2fs after starting; replacing it", child.pid, how,
                            age)
            else:
                delay = min(self.cfg.StartInterval * 2 ** self.quickDeaths, BACKOFF_CAP)
                self.notBefore = max(time.monotonic() + delay,
                                     self.lastStart + QUICK_DEATH)
                log.error("child %d %s %.2fs after starting; %d quick deaths in a row, "
                          "backing off: next start in %.1fs", child.pid, how, age,
                          self.quickDeaths, self.notBefore - time.monotonic())
        else:
            self.quickDeaths = 0
            log.warning("child %d %s unexpectedly after %.1fs", child.pid, how, age)
        if child.stopStage is None and not child.replacing:
            self.owed += 1           # a child that died unasked is replaced, floor or not

    # -- housekeeping: the policy's decisions, acted on ---------------------

    def housekeeping(self):
        """Act on the policy's decisions; sleep until its next deadline."""
        if self.shutdown:
            return
        self.refresh()
        now = time.monotonic()     # the scoreboard's clock too (see scoreboard.py)
        live = self.liveChildren()
        idleStopping = any(c.stopReason == 'idle' for c in self.children.values())
        draining = [c for c in self.children.values() if c.stopStage == 'HUP']
        for decision in self.policy.housekeeping(live, self.floor, now, idleStopping,
                                                 draining):
            child = decision.child
            if decision.action == scaling.TIMEOUT:
                if not child.stackAsked:
                    self._askStack(child)
            elif decision.action == scaling.RECYCLE:
                self.stopChild(child, decision.reason)
                self.owed += 1
            elif decision.action == scaling.REPLACE_FIRST:
                child.replacing = decision.reason
                self.owed += 1
            else:
                log.info("child %d idle for %.1fs (IdleTimeout %.1fs), %d running above "
                         "the floor of %d: stopping it", child.pid,
                         now - child.lastChange, self.cfg.IdleTimeout, len(live),
                         self.floor)
                self.stopChild(child, 'idle')
        if self.checkTimer is not None:
            self.checkTimer.cancel()
        # A child whose stack was asked for is killed by its own timer, not polled.
        due = self.policy.nextCheck([c for c in self.liveChildren() if not c.stackAsked],
                                    self.floor, now)
        self.checkTimer = self.loop.callAt(due, self.housekeeping) if due else None
        self.notifier.status(self.statusText())

    def statusText(self):
        counts = self.board.counts()
        return f"{counts['busy']} busy, {counts['idle']} idle, {len(self.children)} total"

    # -- growth: the children's wakeups and the BusyStarter rules --------------

    def childWoke(self):
        """A child wrote to the wake pipe: it reached its request limit, or found
        every child busy.  Recycle what is due; grow if a connection waits."""
        try:
            while os.read(self.wakeR, 512):
                pass
        except BlockingIOError:
            pass
        if self.shutdown:
            return
        self.lastWake = time.monotonic()
        self.housekeeping()
        self.lookForGrowth(fromWake=True)

    def lookForGrowth(self, fromWake=False):
        live = self.liveChildren()
        if not self.policy.wantsGrowth(live, len(self.children)):
            self._cool()
            return
        if self._connectionPending():
            log.info("every child is busy and a connection is waiting: starting one more")
            self.grow = max(self.grow, 1)
            self.board.armWake(True)
        else:
            self._rearm()
        self._warm()

    def _warm(self):
        """Every child is busy: poll (1/s and each rule's RunEvery) until that ends."""
        if self.rulesWarm:
            return
        self.rulesWarm = True
        self.ruleTimers = [self.loop.callLater(REARM, self._poll)]
        for rule in self.cfg.busyStarters:
            self.ruleTimers.append(self.loop.callLater(rule.RunEvery, self._rule, rule))

    def _cool(self):
        """Not every child is busy: no polling; the scoreboard's wake tells us when."""
        self.rulesWarm = False
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
        room = len(self.liveChildren()) < self.cfg.MaxProcesses
        at = self.lastWake + REARM
        if not room or time.monotonic() >= at:
            self.board.armWake(room)
        else:
            self.armTimer = self.loop.callAt(at, self._rearm)

    def _poll(self):
        if self.shutdown or not self.rulesWarm:
            return
        self.ruleTimers = [t for t in self.ruleTimers if not t.cancelled]
        self.ruleTimers.append(self.loop.callLater(REARM, self._poll))
        self.refresh()
        self.lookForGrowth()

    def _rule(self, rule):
        """The BusyStarter rule: every child busy and room left, so start one more."""
        if self.shutdown or not self.rulesWarm:
            return
        self.ruleTimers.append(self.loop.callLater(rule.RunEvery, self._rule, rule))
        self.refresh()
        if self.policy.wantsGrowth(self.liveChildren(), len(self.children)):
            log.info("every child is busy: starting one more (BusyStarter, priority %d)",
                     rule.Priority)
            self.grow = max(self.grow, 1)

    def _connectionPending(self):
        fds = self.listeners.fds()
        return bool(fds) and bool(select.select(fds, [], [], 0)[0])

    def forkFailed(self, error):
        """fork() failed (EAGAIN, ENOMEM): back off like a crash streak, log once per streak."""
        self.forkFailures += 1
        delay = min(max(self.cfg.StartInterval, 0.05) * 2 ** self.forkFailures, BACKOFF_CAP)
        self.notBefore = time.monotonic() + delay
        if self.forkFailures == 1:
            log.error("fork failed: %s; backing off (up to %gs between tries) until forks "
                      "work again", error.strerror or error, BACKOFF_CAP)

    def changeFloor(self, delta):
        """SIGTTIN / SIGTTOU: raise or lower the floor by one, between 1 and MaxProcesses."""
        floor = self.policy.changeFloor(self.floor, delta)
        log.info("floor %d -> %d", self.floor, floor)
        self.floor = floor
        self.refresh()
        victim = self.policy.floorVictim(self.liveChildren(), floor, time.monotonic())
        if victim is not None:
            self.stopChild(victim, 'floor lowered')
        self.maintain()

