"""The pool: the one owner of the children's records; when to start one, whom to stop.

``Pool`` records and acts.  It holds a ``Child`` record per child of this
generation (stopping ones included), refreshed from its scoreboard slot,
and what paces starts: the floor, the repairs owed, the growth wanted, the
backoff.  It carries out ``scaling.Policy``'s decisions, with two parts of
its own: ``Growth`` (growth.py: load) and ``Guards`` (guards.py: hung
requests and memory).

It never forks and never reaps: ``startDue()`` only says whether the manager
should fork now, and arms a timer for when it will be due; the manager forks
and books the child with ``started()``, reaps and hands the exit to
``exited()``.  What it needs of the manager comes in through its
constructor: ``ending()`` (the manager's shutdown mode, None while it runs),
``previousServing()`` (a reload's previous generation still serves),
``onReady()`` (this generation's first children are ready) and
``wakeStandby()`` (the record of a standby child told to serve, or None).
"""

import logging
import signal
import time
import types

from zope.interface import implementer

from peak_lite.running.procman import policy, scaling
from peak_lite.running.procman.growth import Growth
from peak_lite.running.procman.guards import Guards
from peak_lite.running.procman.interfaces import IPool
from peak_lite.running.procman.records import Child
from peak_lite.running.procman.scoreboard import STARTING

log = logging.getLogger('peak_lite.procman')

__all__ = ['Pool', 'Child']   # Child: see records.py

READY_POLL = 0.02       # while the first children boot, before READY=1
QUICK_DEATH = policy.QUICK_DEATH
BACKOFF_CAP = 30.0
# A young child that died of one of these was killed from outside, not crashed.
KILLED_BY = {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT}


def _running():
    return None


@implementer(IPool)
class Pool:
    """See IPool and the module docstring."""

    def __init__(self, cfg, loop, board, tally, notifier, listeners, hasCode=True,
                 ending=_running, previousServing=lambda: False, onReady=lambda: None,
                 policy=None, wakeStandby=lambda: None, waiting=()):
        self.cfg = cfg
        self.loop = loop
        self.board = board
        self.tally = tally
        self.notifier = notifier
        self.listeners = listeners
        self.hasCode = hasCode       # False: a reload's code failed to load (see Manager)
        self.ending = ending
        self.previousServing = previousServing
        self.onReady = onReady
        self.wakeStandby = wakeStandby
        self.policy = policy if policy is not None else scaling.Policy(cfg)
        self.children = {}           # pid -> Child: ours alone; others get records()
        self.floor = cfg.MinProcesses
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
        self.readySent = False
        self.growth = Growth(cfg, loop, board, listeners, self.policy, self, ending, waiting)
        self.guards = Guards(cfg, loop, self.policy, self, ending)

    # -- the records -------------------------------------------------------

    def records(self):
        """See IPool."""
        return types.MappingProxyType(self.children)

    def live(self):
        """See IPool."""
        return [c for c in self.children.values() if c.stopStage is None]

    def refresh(self):
        """Copy each child's slot into its record."""
        for child in self.children.values():
            pid, state, requests, lastChange, _ = self.board.read(child.slot)
            if pid == child.pid and lastChange > 0:     # never a slot caught mid-write
                child.state, child.requests, child.lastChange = state, requests, lastChange

    def overlapping(self):
        """A reload's new generation is starting while the old one still serves."""
        return self.previousServing() and not self.readySent

    def target(self):
        if self.readySent:
            return self.floor
        if self.overlapping():
            # The bound of a reload: the old generation plus Prefork new children.
            return max(1, self.cfg.Prefork)
        return max(self.cfg.Prefork, self.floor)

    # -- starting ----------------------------------------------------------

    def startDue(self):
        """True if the manager should fork one child now; else arm a timer for when."""
        if self.ending() or not self.hasCode:
            return False
        live = self.live()
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

    def startFromStandby(self):
        """Start what is due from standbys (standby.py): no fork, so no need to wait."""
        while self.startDue():
            child = self.wakeStandby()
            if child is None:
                return
            self.started(child)

    def started(self, child):
        """A child was forked: book it, and stop the child it replaces."""
        self.lastStart = time.monotonic()
        if self.startingGrowth:
            self.lastGrowth = self.lastStart
        self.children[child.pid] = child
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
        old = next((c for c in self.live() if c.replacing), None)
        if old is not None:
            self.stopChild(old, old.replacing)
        if self.readySent:
            self.growth.armWake()
        if self.startingGrowth:
            self.growth.grew()
        self.maintain()

    def _streakCheck(self, child):
        if self.quickDeaths and child.proxy.isRunning:
            self.quickDeaths = 0     # a child survived: the crash streak is over

    def wantGrowth(self):
        """Growth (growth.py) found load for one more child: start it, paced."""
        self.grow = max(self.grow, 1)

    def growthDue(self):
        """The monotonic time from which a start on load may follow: StartInterval
        after the last one, and not before a backoff ends."""
        return max(self.lastGrowth + self.cfg.StartInterval, self.notBefore)

    def forkFailed(self, error):
        """fork() failed (EAGAIN, ENOMEM): back off like a crash streak, log once per streak."""
        self.forkFailures += 1
        delay = min(max(self.cfg.StartInterval, 0.05) * 2 ** self.forkFailures, BACKOFF_CAP)
        self.notBefore = time.monotonic() + delay
        if self.forkFailures == 1:
            log.error("fork failed: %s; backing off (up to %gs between tries) until forks "
                      "work again", error.strerror or error, BACKOFF_CAP)

    def slotsFull(self):
        """Every scoreboard slot is held by a child still stopping: try again in 1s."""
        log.warning("scoreboard full: no child started; trying again in 1s")
        self.grow = 0
        self.notBefore = time.monotonic() + 1.0

    def maintain(self):
        """Re-plan after any change: READY=1, housekeeping's next look, notify STATUS."""
        if self.ending():
            return
        if not self.readySent and len(self.live()) >= self.target():
            self._readyCheck()
        self.housekeeping()

    def _readyCheck(self):
        """READY once the first children have left the starting state."""
        if self.ending() or self.readySent:
            return
        if len(self.live()) < self.target():
            return                   # a child died meanwhile: maintain() looks again
        self.refresh()
        if any(c.state == STARTING for c in self.live()):
            self.loop.callLater(READY_POLL, self._readyCheck)
            return
        self.readySent = True
        if self.listeners.inherited and self.growth.connectionPending():
            # Connections queued while no pool served these sockets (a restart's gap,
            # a predecessor's stop, socket activation) are worked off for
            # StartInterval before that backlog can grow the pool.  On sockets this
            # manager bound, whatever waits arrived while its pool started: load.
            self.lastGrowth = time.monotonic()
        log.info("ready: %d children", len(self.live()))
        self.growth.look()           # arms the wake; or, every child busy already, grows
        self.onReady()

    # -- exits -------------------------------------------------------------

    def exited(self, proxy):
        """See IPool.

        A repair owed or a backoff is booked first, and a standby woken for
        it, before the counts, the slot and the log line.
        """
        child = self.children.pop(proxy.pid, None)
        if child is None:
            return None
        # Its own count, not the last look's copy: a child that served before
        # it was killed, however young, did not crash at startup.
        child.requests = self.board.read(child.slot)[2]
        level, message, args = self._childGone(child, proxy)
        if not self.ending():
            self.startFromStandby()
        self.tally.exited(child, self.board)     # its counts outlive its slot
        self.board.clear(child.slot)
        log.log(level, message, *args)
        return child

    def _childGone(self, child, proxy):
        """Book a reaped child: a crash streak's backoff, or a repair owed.
        Returns its log line: ``(level, message, args)``."""
        age = time.monotonic() - child.startedAt
        how = proxy.describeExit()
        if child.stopStage is None and not child.replacing:
            self.owed += 1           # a child that died unasked is replaced, floor or not
        if child.stopStage is not None:
            return logging.INFO, "child %d %s (%s)", (child.pid, how, child.stopReason)
        if age >= QUICK_DEATH or child.requests:
            self.quickDeaths = 0
            return logging.WARNING, "child %d %s unexpectedly after %.1fs", (child.pid, how, age)
        self.quickDeaths += 1
        if self.quickDeaths == 1 and proxy.exitSignal in KILLED_BY:
            # Killed from outside, once: a repair, not yet a crash streak.
            return (logging.WARNING, "child %d %s %.2fs after starting; replacing it",
                    (child.pid, how, age))
        delay = min(self.cfg.StartInterval * 2 ** self.quickDeaths, BACKOFF_CAP)
        self.notBefore = max(time.monotonic() + delay, self.lastStart + QUICK_DEATH)
        return (logging.ERROR, "child %d %s %.2fs after starting; %d quick deaths in a row, "
                "backing off: next start in %.1fs",
                (child.pid, how, age, self.quickDeaths, self.notBefore - time.monotonic()))

    # -- stopping ----------------------------------------------------------

    def stopChild(self, child, reason, quick=False):
        """Graceful: HUP, TERM after StopTimeout, KILL after KillTimeout.  Quick: TERM, KILL."""
        if child.stopStage is not None:
            return
        child.stopReason = reason
        child.stopAskedAt = time.monotonic()
        self.board.markStopping(child.slot)
        self.signalChild(child, 'TERM' if quick else 'HUP')

    def signalChild(self, child, stage):
        """Send SIG``stage`` now and escalate from there if the child outlives its timeout."""
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
        self.signalChild(child, following)

    def stopAll(self, mode):
        """See IPool."""
        quick = mode == 'quit'
        for child in list(self.children.values()):
            if quick and child.stopStage == 'HUP':
                child.stopStage = None
            self.stopChild(child, mode, quick=quick)

    def signalAll(self, sig):
        """See IPool."""
        for child in self.children.values():
            child.proxy.sendSignal(sig)

    def replace(self, child, reason, quick=False):
        """Stop ``child`` and owe its replacement (a repair: it starts at once)."""
        self.stopChild(child, reason, quick=quick)
        self.owed += 1

    def replaceFirst(self, child, reason):
        """Start ``child``'s replacement first; ``started()`` stops it then."""
        child.replacing = reason
        self.owed += 1

    # -- housekeeping: the policy's decisions, acted on ---------------------

    def housekeeping(self):
        """Act on the policy's decisions; sleep until its next deadline."""
        if self.ending():
            return
        self.refresh()
        now = time.monotonic()     # the scoreboard's clock too (see scoreboard.py)
        live = self.live()
        idleStopping = any(c.stopReason == 'idle' for c in self.children.values())
        draining = [c for c in self.children.values() if c.stopStage == 'HUP']
        for decision in self.policy.housekeeping(live, self.floor, now, idleStopping,
                                                 draining):
            child = decision.child
            if decision.action == scaling.TIMEOUT:
                if not child.stackAsked:
                    self.guards.askStack(child)
            elif decision.action == scaling.RECYCLE:
                self.replace(child, decision.reason)
            elif decision.action == scaling.REPLACE_FIRST:
                self.replaceFirst(child, decision.reason)
            else:
                log.info("child %d idle for %.1fs (IdleTimeout %.1fs), %d running above "
                         "the floor of %d: stopping it", child.pid,
                         now - child.lastChange, self.cfg.IdleTimeout, len(live),
                         self.floor)
                self.stopChild(child, 'idle')
        if self.checkTimer is not None:
            self.checkTimer.cancel()
        # A child whose stack was asked for is killed by its own timer, not polled.
        due = self.policy.nextCheck([c for c in self.live() if not c.stackAsked],
                                    self.floor, now)
        self.checkTimer = self.loop.callAt(due, self.housekeeping) if due else None
        self.notifier.status(self.statusText())

    def statusText(self):
        counts = self.board.counts()
        return f"{counts['busy']} busy, {counts['idle']} idle, {len(self.children)} total"

    def childWoke(self):
        """See IPool."""
        if self.ending():
            return
        self.growth.woke()
        self.housekeeping()
        self.growth.look()

    def changeFloor(self, delta):
        """SIGTTIN / SIGTTOU: raise or lower the floor by one, between 1 and MaxProcesses."""
        floor = self.policy.changeFloor(self.floor, delta)
        previous, self.floor = self.floor, floor
        self.startFromStandby()
        log.info("floor %d -> %d", previous, floor)
        self.refresh()
        victim = self.policy.floorVictim(self.live(), floor, time.monotonic())
        if victim is not None:
            self.stopChild(victim, 'floor lowered')
        self.maintain()
