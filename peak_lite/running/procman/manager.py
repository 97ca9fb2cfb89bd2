"""The process manager: keeps a pool of preforked children and reacts to signals.

The manager decides; the scoreboard records; the policy computes; the
reaper reaps.  Every decision runs as a main-loop callback: the signal
handler object only calls into it after the loop has woken.
"""

import logging
import os
import signal
import time

from peak_lite.running.mainloop import MainLoop
from peak_lite.running.process import (
    ParentPipe, ProcessTemplate, Reaper, childBootstrap, highFd)
from peak_lite.running.procman import policy, restart
from peak_lite.running.procman.child import ChildCommand
from peak_lite.running.procman.notify import Notifier
from peak_lite.running.procman.privileges import dropPrivileges
from peak_lite.running.procman.reloadstatus import ReloadStatus
from peak_lite.running.procman.scaling import TICK, Scaling
from peak_lite.running.procman.scoreboard import STARTING, STATES, openScoreboard

log = logging.getLogger('peak_lite.procman')

__all__ = ['Manager']

BACKOFF_CAP = 30.0
# Signals held pending from the start of ``peak procman`` until the loop handles them.
HELD_SIGNALS = {signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGTTIN, signal.SIGTTOU}
READY_POLL = 0.02       # while the first children boot, before READY=1


class Child:
    """The manager's record of one child."""

    def __init__(self, proxy, slot, number, limit):
        self.proxy = proxy
        self.pid = proxy.pid
        self.slot = slot
        self.number = number
        self.limit = limit
        self.startedAt = proxy.startedAt
        self.stopStage = None        # None, 'HUP', 'TERM' or 'KILL'
        self.stopReason = None
        self.replacing = None        # recycle reason, while its replacement is on its way
        self.state = STATES.index('starting')
        self.requests = 0
        self.lastChange = time.monotonic()


class Manager(Scaling):
    """One procman instance's pool.  ``run()`` returns an exit code, or a child's command."""

    def __init__(self, cfg, subject, listeners, pidfile, stderr, environ, title):
        self.cfg = cfg
        self.subject = subject
        self.listeners = listeners
        self.pidfile = pidfile
        self.stderr = stderr
        self.environ = environ
        self.title = title
        self.pid = os.getpid()
        self.floor = cfg.MinProcesses
        self.children = {}
        self.numbers = 0
        self.shutdown = None         # None, 'stop', 'quit' or 'restart'
        self.lastStart = float('-inf')
        self.quickDeaths = 0
        self.owed = 0                # replacements due for children that died or were recycled
        self.notBefore = 0.0         # backoff: no start before this monotonic time
        self.startTimer = None
        self.checking = None         # the config check of a pending restart
        self.readySent = False
        self.readyTimer = None
        self.stoppingSent = False
        self.rulesDue = {}           # BusyStarter rule -> monotonic time it next runs
        self.board = openScoreboard(cfg)
        self.notifier = Notifier(environ)
        self.reloads = ReloadStatus(cfg.PidFile, log)
        self.parentPipe = ParentPipe()
        self.wakeR, self.wakeW = map(highFd, os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC))
        self.reaper = Reaper(self.processExited)
        self.mainLoop = MainLoop(signalHandler=ManagerSignals(self))
        self.template = ProcessTemplate(self.makeChildCommand, childSetup=self.childSetup)
        self._spawningSlot = None

    # -- running ---------------------------------------------------------

    def run(self):
        loop = self.mainLoop.eventLoop
        loop.add_reader(self.wakeR, self.allBusy)
        # The first callback runs once run() has pushed our handlers.
        loop.call_soon(signal.pthread_sigmask, signal.SIG_UNBLOCK, HELD_SIGNALS)
        loop.call_soon(self.maintain)
        loop.call_later(TICK, self.tick)
        start = time.monotonic()
        for rule in self.cfg.busyStarters:
            if rule.RunEvery < TICK:
                loop.call_later(rule.RunEvery, self.busyRule, rule)
            else:                    # checked by the tick: no wakeup of its own
                self.rulesDue[rule] = start + rule.RunEvery
        log.info("manager %d started: %s, %d-%d children, serving %s", self.pid,
                 self.cfg.filename, self.cfg.MinProcesses, self.cfg.MaxProcesses,
                 self.listeners.describe())
        result = self.mainLoop.run()
        if os.getpid() != self.pid:
            return result            # we are a child: hand our command to the trampoline
        return self.finish()

    def finish(self):
        os.close(self.wakeR)
        os.close(self.wakeW)
        self.parentPipe.close()
        if self.shutdown == 'restart':
            restart.reexec(self.environ, self.listeners, self.pidfile, self.pid)
            self.shutdown = 'stop'   # exec failed
        if not self.stoppingSent:
            self.notifier.send('STOPPING=1')
        self.listeners.close()
        self.board.close()
        if self.pidfile is not None:
            self.reloads.remove()
            self.pidfile.remove()
        log.info("manager %d stopped", self.pid)
        return 0

    # -- the pool --------------------------------------------------------

    def liveChildren(self):
        return [c for c in self.children.values() if c.stopStage is None]

    def refresh(self):
        """Copy each child's slot into its record."""
        for child in self.children.values():
            _, child.state, child.requests, child.lastChange, _ = self.board.read(child.slot)

    def maintain(self):
        """Start children up to the floor (Prefork at first), paced by StartInterval."""
        if self.shutdown:
            return
        target = self.floor if self.readySent else max(self.cfg.Prefork, self.floor)
        if len(self.liveChildren()) < target or self.owed:
            self.startSoon()
        elif not self.readySent:
            self._readyCheck()

    def _readyCheck(self):
        """Tell systemd READY=1 once the first children have left the starting state."""
        self.readyTimer = None
        if self.shutdown or self.readySent:
            return
        self.refresh()
        if any(c.state == STARTING for c in self.liveChildren()):
            self.readyTimer = self.mainLoop.eventLoop.call_later(READY_POLL, self._readyCheck)
            return
        self.readySent = True
        log.info("ready: %d children", len(self.liveChildren()))
        self.notifier.send('READY=1', f'MAINPID={self.pid}', f'STATUS={self.statusText()}')

    def startSoon(self):
        """Start one child as soon as pacing and backoff allow; then maintain again.

        The fork always happens at the top of its own loop callback, so that
        in the new child nothing of the manager's work is left to run after it.
        """
        if self.startTimer is not None or self.shutdown:
            return
        due = max(self.lastStart + self.cfg.StartInterval, self.notBefore)
        if self.quickDeaths:
            # In a crash streak, see each new child live before starting the next.
            due = max(due, self.lastStart + policy.QUICK_DEATH)
        self.startTimer = self.mainLoop.eventLoop.call_later(
            max(0.0, due - time.monotonic()), self._startNow)

    def _startNow(self):
        self.startTimer = None
        if self.shutdown:
            return
        if len(self.liveChildren()) - self._replacing() >= self.cfg.MaxProcesses:
            self.owed = 0
            return
        if self.spawn():
            self.owed = max(0, self.owed - 1)
            self.maintain()

    def spawn(self):
        """Fork one child.  False in the child (which must return at once) or when full."""
        self.numbers += 1
        limit = policy.requestLimit(self.cfg)
        slot = self.board.allocate(-1, self.numbers, limit)
        if slot is None:
            log.warning("scoreboard full: no child started")
            return False
        self._spawningSlot = slot
        proxy, stub = self.template.spawn(self)
        if stub is not None:
            self.mainLoop.exitWith(stub)
            return False
        self.board.setPid(slot, proxy.pid)
        self.lastStart = time.monotonic()
        child = Child(proxy, slot, self.numbers, limit)
        self.children[proxy.pid] = child
        self.reaper.track(proxy)
        log.info("started child %d (worker %d)", proxy.pid, child.number)
        old = next((c for c in self.liveChildren() if c.replacing), None)
        if old is not None:
            self.stopChild(old, old.replacing)
        return True

    def stopChild(self, child, reason, quick=False):
        """Graceful: HUP, TERM after StopTimeout, KILL after KillTimeout.  Quick: TERM, KILL."""
        if child.stopStage is not None:
            return
        child.stopReason = reason
        self.board.markStopping(child.slot)
        self._signalChild(child, 'TERM' if quick else 'HUP')

    def _signalChild(self, child, stage):
        child.stopStage = stage
        if not child.proxy.sendSignal(f'SIG{stage}'):
            return
        delay = {'HUP': self.cfg.StopTimeout, 'TERM': self.cfg.KillTimeout}.get(stage)
        if delay is not None:
            self.mainLoop.eventLoop.call_later(delay, self._escalate, child, stage)

    def _escalate(self, child, stage):
        if not child.proxy.isRunning or child.stopStage != stage:
            return
        following = 'TERM' if stage == 'HUP' else 'KILL'
        log.warning("child %d still running %.1fs after SIG%s; sending SIG%s", child.pid,
                    self.cfg.StopTimeout if stage == 'HUP' else self.cfg.KillTimeout, stage,
                    following)
        self._signalChild(child, following)

    # -- child side ------------------------------------------------------

    def childSetup(self):
        """Runs in a new child right after fork."""
        fds = [self.wakeR, self.pidfile.fd if self.pidfile is not None else None]
        fds += self.notifier.fds()
        # A SIGUSR1 forwarded between the bootstrap's reset to SIG_DFL and our
        # handler would kill the child: hold it pending until the handler is in.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        childBootstrap(self.pid, closeFds=[fd for fd in fds if fd is not None],
                       parentPipe=self.parentPipe, mainLoop=self.mainLoop)
        self.listeners.installInChild()
        self.stderr.installChildHandler()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
        dropPrivileges(self.cfg, self.pid)

    def makeChildCommand(self):
        return ChildCommand(self.subject, self.board, self._spawningSlot, self.wakeW,
                            self.title, self.numbers)

    # -- events ----------------------------------------------------------

    def processExited(self, proxy):
        if self.checking is not None and self.checking[0] is proxy:
            self._checkDone(proxy)
            return
        child = self.children.pop(proxy.pid, None)
        if child is None:
            return
        # Its own count, not the last tick's copy: a child that served before
        # it was killed, however young, did not crash at startup.
        child.requests = self.board.read(child.slot)[2]
        self.board.clear(child.slot)
        age = time.monotonic() - child.startedAt
        how = proxy.describeExit()
        if child.stopStage is not None:
            log.info("child %d %s (%s)", child.pid, how, child.stopReason)
        elif age < policy.QUICK_DEATH and not child.requests:
            self.quickDeaths += 1
            delay = min(self.cfg.StartInterval * 2 ** self.quickDeaths, BACKOFF_CAP)
            self.notBefore = max(time.monotonic() + delay, self.lastStart + policy.QUICK_DEATH)
            delay = self.notBefore - time.monotonic()
            if self.startTimer is not None:
                # A start paced before this death would ignore the new backoff.
                self.startTimer.cancel()
                self.startTimer = None
            log.error("child %d %s %.2fs after starting; %d quick deaths in a row, "
                      "backing off: next start in %.1fs", child.pid, how, age,
                      self.quickDeaths, delay)
        else:
            self.quickDeaths = 0
            log.warning("child %d %s unexpectedly after %.1fs", child.pid, how, age)
        if child.stopStage is None and not child.replacing:
            self.owed += 1           # a child that died unasked is replaced, floor or not
        if self.shutdown:
            self.checkShutdownDone()
        else:
            self.maintain()

    def reap(self):
        self.reaper.reap()

    # -- shutdown and restart --------------------------------------------

    def beginShutdown(self, mode):
        if self.shutdown == 'restart' and mode in ('stop', 'quit'):
            log.info("restart abandoned: stopping instead")
        elif self.shutdown is not None and not (mode == 'quit' and self.shutdown == 'stop'):
            return
        self.shutdown = mode
        if self.startTimer is not None:
            self.startTimer.cancel()
            self.startTimer = None
        if mode == 'restart':
            usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            self.notifier.send('RELOADING=1', f'MONOTONIC_USEC={usec}')
        else:
            self.stoppingSent = self.notifier.send('STOPPING=1')
        log.info("%s: stopping %d children", {'stop': 'graceful stop', 'quit': 'quick stop',
                                              'restart': 'restart'}[mode], len(self.children))
        for child in list(self.children.values()):
            if mode == 'quit' and child.stopStage == 'HUP':
                child.stopStage = None
            self.stopChild(child, mode, quick=(mode == 'quit'))
        self.checkShutdownDone()

    def checkShutdownDone(self):
        if self.shutdown and not self.children:
            self.mainLoop.stop()

    def requestRestart(self):
        """SIGHUP: check the new config and code in a separate process, then restart."""
        self.reloads.requested()
        if self.shutdown or self.checking is not None:
            return
        proxy, out = restart.startCheck(self.environ, self.listeners)
        self.reloads.checking()
        log.info("SIGHUP: checking the config and application before restarting (pid %d)",
                 proxy.pid)
        self.checking = (self.reaper.track(proxy), out)

    def _checkDone(self, proxy):
        ok, reason = restart.readCheck(*self.checking)
        self.checking = None
        self.reloads.done(ok, reason)
        if ok:
            self.beginShutdown('restart')
        else:
            log.error("restart refused, the old children keep serving: %s", reason)

    def reopenLogs(self):
        self.stderr.reopen()
        for child in self.children.values():
            child.proxy.sendSignal('SIGUSR1')


class ManagerSignals:
    """The manager's signal handler (see ISignalHandler): each method runs in the loop."""

    def __init__(self, manager):
        self.manager = manager

    def SIGCHLD(self, signum, frame):
        self.manager.reap()

    def SIGHUP(self, signum, frame):
        self.manager.requestRestart()

    def SIGTERM(self, signum, frame):
        self.manager.beginShutdown('stop')

    SIGINT = SIGTERM

    def SIGQUIT(self, signum, frame):
        self.manager.beginShutdown('quit')

    def SIGUSR1(self, signum, frame):
        self.manager.reopenLogs()

    def SIGTTIN(self, signum, frame):
        self.manager.changeFloor(+1)

    def SIGTTOU(self, signum, frame):
        self.manager.changeFloor(-1)
