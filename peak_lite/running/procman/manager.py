"""The process manager: keeps a pool of preforked children and reacts to signals.

The manager decides; the scoreboard records; the policy (``scaling.Policy``)
computes; the reaper reaps; the loop (``loop.ManagerLoop``) waits.

``run()`` turns the loop one turn at a time and forks *between* turns, never
inside a callback: in the new child, ``run()`` returns the child's command at
once, with nothing of the manager's loop on the stack, and the trampoline
runs it.  Every other decision runs as a loop callback: signals through the
one dispatch table of ``signalTable()``, children's wakeups through the
scoreboard's wake pipe, and timers.

When to start a child:
- a *repair* (a child that died outside a crash streak, or one replaced for
  its request limit or a request timeout) and the floor (``MinProcesses``,
  moved by SIGTTIN/SIGTTOU) start at once;
- *growth* above the floor (every child busy) is paced by ``StartInterval``;
- a crash streak (children dying young, unasked) and failed forks back off
  exponentially, up to ``BACKOFF_CAP``.

The bound: never more than ``MaxProcesses`` children, stopping ones
included, except that a replacement may start while the child it replaces
is still stopping: ``MaxProcesses + 1`` at most, for that one replacement.
During a reload's overlap (see generation.py) the previous generation, which
this image only retires, is counted apart: ``Prefork`` new children at most
until they are ready.
"""

import logging
import os
import signal
import time

from peak_lite.running.process import (
    ParentPipe, ProcessTemplate, Reaper, becomeSubreaper, childBootstrap, highFd,
    killLeftovers)
from peak_lite.running.procman import policy, restart
from peak_lite.running.procman.child import ChildCommand
from peak_lite.running.procman.generation import OldGeneration
from peak_lite.running.procman.loop import ManagerLoop
from peak_lite.running.procman.notify import Notifier
from peak_lite.running.procman.pool import Pool
from peak_lite.running.procman.reloading import Reloading
from peak_lite.running.procman.privileges import dropPrivileges
from peak_lite.running.procman.reloadstatus import ReloadStatus
from peak_lite.running.procman.scoreboard import STATES, openScoreboard
from peak_lite.running.procman.status import Tally, openStatus

log = logging.getLogger('peak_lite.procman')

__all__ = ['Manager', 'HELD_SIGNALS']

# Signals held pending from the start of ``peak procman`` until the loop handles
# them, and again from the moment the loop stops through exec or exit.
HELD_SIGNALS = {signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGTTIN, signal.SIGTTOU}
# Held too from a reload's exec until the new image's loop runs: the old
# generation serves meanwhile, and must be stopped gracefully, not orphaned.
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}
QUICK_DEATHS_REFUSE = 3  # new children dying at start, in a row: the reload failed
SAFETY_NET = 30.0       # an idle manager still reaps and reports this often


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
        self.stopAskedAt = None      # monotonic time of the request to stop
        self.replacing = None        # recycle reason, while its replacement is on its way
        self.stackAsked = False      # RequestTimeout: its stack asked for, its kill due
        self.state = STATES.index('starting')
        self.requests = 0
        self.lastChange = time.monotonic()


class Manager(Reloading, Pool):
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
        self.children = {}
        self.numbers = 0
        self.shutdown = None         # None, 'stop', 'quit' or 'restart'
        self.stopped = False
        self.board = openScoreboard(cfg)
        self.notifier = Notifier(environ)
        self.reloads = ReloadStatus(cfg.PidFile, log)
        self.parentPipe = ParentPipe()
        self.wakeR, self.wakeW = map(highFd, os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC))
        self.reaper = Reaper(self.processExited)
        self.loop = ManagerLoop()
        self.old = OldGeneration.fromEnviron(environ, cfg, self.loop, self.reaper)
        self.reloadPending = self.old is not None    # its outcome is ours to publish
        self.reloadAgain = False
        self.carry = False
        self.loadFailure = None      # this image could not load its code (subject None)
        self.check = restart.ReloadCheck(environ, listeners, cfg.ReloadCheckTimeout, self.loop,
                                         self.reaper, self._checkDone, self.reloads.checking,
                                         configPath=cfg.filename)
        self.template = ProcessTemplate(self.makeChildCommand, childSetup=self.childSetup)
        self._spawningSlot = None
        Pool.__init__(self)
        self.tally = Tally.fromEnvironment(environ)   # what the scoreboard forgets
        self.draining = self.drained = False     # DrainDelay, after SIGTERM
        self.statusService = openStatus(self)

    # -- running ---------------------------------------------------------

    def signalTable(self):
        """The one place a signal to the manager becomes an action (see loop.py)."""
        return {
            signal.SIGCHLD: self.reap,
            signal.SIGHUP: self.requestRestart,
            signal.SIGTERM: lambda: self.beginShutdown('stop'),
            signal.SIGINT: lambda: self.beginShutdown('stop'),
            signal.SIGQUIT: lambda: self.beginShutdown('quit'),
            signal.SIGUSR1: self.reopenLogs,
            signal.SIGUSR2: lambda: log.info("SIGUSR2 received: it has no meaning for the "
                                             "manager; ignored"),
            signal.SIGTTIN: lambda: self.changeFloor(+1),
            signal.SIGTTOU: lambda: self.changeFloor(-1),
        }

    def run(self):
        becomeSubreaper()
        self.loop.addReader(self.wakeR, self.childWoke)
        self.loop.install(self.signalTable())
        assert HELD_SIGNALS <= set(self.loop.table), "every held signal needs an action"
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD_SIGNALS | STOP_SIGNALS)
        self.loop.callLater(SAFETY_NET, self.safetyNet)
        log.info("manager %d started: %s, %d-%d children, serving %s", self.pid,
                 self.cfg.filename, self.cfg.MinProcesses, self.cfg.MaxProcesses,
                 self.listeners.describe())
        if self.old is not None and self.subject is None:
            self.reloadFailed(f"the code no longer loads after its check passed: "
                              f"{self.loadFailure}; no child will be started or replaced "
                              f"until a reload succeeds")
        elif self.old is not None:
            log.info("reload: %d children of the previous generation keep serving until "
                     "%d new ones are ready", len(self.old), self.target())
        self.reap()                  # children of a previous generation, carried by exec
        self.maintain()
        while not self.stopped:
            if self.startDue():
                stub = self.spawn()
                if stub is not None:
                    return stub      # we are the new child: its command, for the trampoline
                continue
            self.loop.runOnce()
        # From here through exec or exit, a held signal stays pending: with the
        # handlers popped, its default action would kill us.
        signal.pthread_sigmask(signal.SIG_BLOCK,
                               HELD_SIGNALS | (STOP_SIGNALS if self.carry else set()))
        if self.statusService is not None:
            self.statusService.detach()      # closed in finish(), or carried by exec
        self.loop.close()
        return self.finish()

    def finish(self):
        if self.carry:
            self.execCarrying()      # returns only if exec failed
        killed = killLeftovers()
        if killed:
            log.warning("killed %d leftover descendant(s) of the children: %s", len(killed),
                        ' '.join(map(str, killed)))
        os.close(self.wakeR)
        os.close(self.wakeW)
        self.parentPipe.close()
        if self.shutdown == 'restart':
            self.tally.carryAcrossExec(self.environ)
            restart.reexec(self.environ, self.listeners, self.pidfile, self.pid,
                           self.check.takeConfig(), self.statusService)
            self.shutdown = 'stop'   # exec failed
        if not self.stoppingSent:
            self.notifier.send('STOPPING=1')
        if self.statusService is not None:
            self.statusService.close()
        self.listeners.close()
        self.board.close()
        if self.pidfile is not None:
            self.reloads.remove()
            self.pidfile.remove()
        log.info("manager %d stopped", self.pid)
        return 0

    def safetyNet(self):
        """Reap and report now and then, even if no signal or child woke us."""
        self.loop.callLater(SAFETY_NET, self.safetyNet)
        self.reap()
        if not self.shutdown:
            self.housekeeping()

    # -- forking -----------------------------------------------------------

    def spawn(self):
        """Fork one child, between loop turns.  In the child: its command.  Else None."""
        self.numbers += 1
        limit = policy.requestLimit(self.cfg)
        slot = self.board.allocate(-1, self.numbers, limit)
        if slot is None:             # every slot held by children still stopping
            log.warning("scoreboard full: no child started; trying again in 1s")
            self.grow = 0
            self.notBefore = time.monotonic() + 1.0
            return None
        self._spawningSlot = slot
        try:
            proxy, stub = self.template.spawn(self)
        except OSError as e:
            self.board.clear(slot)   # a failed fork keeps no slot
            self.forkFailed(e)
            return None
        if stub is not None:
            return stub
        self.board.setPid(slot, proxy.pid)
        self.tally.spawned()
        self.started(Child(proxy, slot, self.numbers, limit))
        return None

    def childSetup(self):
        """Runs in a new child right after fork, with every signal blocked."""
        self.board.setPid(self._spawningSlot, os.getpid())   # whichever of us runs first
        self.loop.abandonInChild()
        if self.statusService is not None:
            self.statusService.closeInChild()
        self.notifier.close()        # the socket object's own close: no stale number later
        fds = [self.wakeR, self.pidfile.fd if self.pidfile is not None else None]
        fds += self.old.fds() if self.old is not None else []
        fds.append(self.check.configFd)
        childBootstrap(self.pid, closeFds=[fd for fd in fds if fd is not None],
                       parentPipe=self.parentPipe)
        self.listeners.installInChild()
        self.stderr.installChildHandler()
        dropPrivileges(self.cfg, self.pid)

    def makeChildCommand(self):
        return ChildCommand(self.subject, self.board, self._spawningSlot, self.wakeW,
                            self.title, self.numbers)

    # -- events ----------------------------------------------------------

    def reap(self):
        self.reaper.reap()

    def processExited(self, proxy):
        if self.old is not None and self.old.owns(proxy):
            self.tally.exits['reload'] += 1     # the previous generation, retired
            if self.old.exited(proxy):
                self.old = None
                self.oldGone()
            if self.shutdown:
                self.checkShutdownDone()
            return
        if self.check.owns(proxy):
            self.check.exited(proxy)
            if self.shutdown:
                self.checkShutdownDone()
            return
        child = self.children.pop(proxy.pid, None)
        if child is None:
            return
        # Its own count, not the last look's copy: a child that served before
        # it was killed, however young, did not crash at startup.
        child.requests = self.board.read(child.slot)[2]
        self.tally.exited(child, self.board)     # its counts outlive its slot
        self.board.clear(child.slot)
        self.childGone(child, proxy)
        if (self.overlapping() and self.reloadPending
                and self.quickDeaths >= QUICK_DEATHS_REFUSE):
            self.reloadFailed(f"the new generation's children die before they are ready "
                              f"(child {child.pid} {proxy.describeExit()}, "
                              f"{self.quickDeaths} in a row)")
        if self.shutdown:
            self.checkShutdownDone()
        else:
            self.maintain()

    # -- shutdown and restart --------------------------------------------

    def beginShutdown(self, mode):
        if self._drainFirst(mode):
            return
        if self.shutdown == 'restart' and mode in ('stop', 'quit'):
            log.info("restart abandoned: stopping instead")
        elif self.shutdown is not None and not (mode == 'quit' and self.shutdown == 'stop'):
            return
        self.shutdown = mode
        if mode == 'restart':
            usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            self.notifier.send('RELOADING=1', f'MONOTONIC_USEC={usec}')
        else:
            self.check.kill()
            self.reloadAgain = False
            self.stoppingSent = self.notifier.send('STOPPING=1')
            if self.old is not None:
                self.old.retire(quick=(mode == 'quit'))
        log.info("%s: stopping %d children", {'stop': 'graceful stop', 'quit': 'quick stop',
                                              'restart': 'restart'}[mode], len(self.children))
        for child in list(self.children.values()):
            if mode == 'quit' and child.stopStage == 'HUP':
                child.stopStage = None
            self.stopChild(child, mode, quick=(mode == 'quit'))
        self.checkShutdownDone()

    def _drainFirst(self, mode):
        """DrainDelay: a graceful stop first only turns /readyz to 503, for that long."""
        if mode != 'stop' or self.shutdown is not None or not self.cfg.DrainDelay \
                or self.drained:
            return False
        if not self.draining:
            self.draining = True
            log.info("graceful stop: still serving for %gs (DrainDelay), not ready",
                     self.cfg.DrainDelay)
            self.loop.callLater(self.cfg.DrainDelay, self._drainOver)
        return True

    def _drainOver(self):
        self.drained = True
        self.beginShutdown('stop')

    def checkShutdownDone(self):
        if (self.shutdown and not self.children and not self.check.running
                and self.old is None):
            self.stopped = True

    def reopenLogs(self):
        self.stderr.reopen()
        for child in self.children.values():
            child.proxy.sendSignal('SIGUSR1')


