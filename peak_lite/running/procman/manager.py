"""The process manager: keeps a pool of preforked children and reacts to signals.

Who does what:
- the **manager** (this module) decides: it owns the process-wide things (the
  loop and its signal table, the reaper, the wake pipe, the pid file, the
  sockets, stderr, the notify socket) and the lifecycle (running, draining,
  stopping, restarting); it forks, reaps, and routes each event to the part
  it belongs to;
- the **scoreboard** (scoreboard.py) records what the children write;
- the **pool** (pool.py) owns the children's records and acts: when to start
  one (pacing, backoff), whom to stop, with its parts ``Growth`` (growth.py,
  load) and ``Guards`` (guards.py, hung requests, memory);
- the **policy** (``scaling.Policy``) computes the decisions, from the
  records, the floor, the clock and the config;
- **reloading** (reloading.py) owns a reload's check, its outcome and the
  previous generation (generation.py) it retires;
- the **loop** (``loop.ManagerLoop``) waits.

Each part gets its collaborators in its constructor, and what it needs of
the manager as callables (``ending``, ``onReady``, ``mode``, ``beginRestart``...),
never the manager itself.  The status listener gets a read-only
``ManagerView`` (view.py).

``run()`` turns the loop one turn at a time and forks *between* turns, never
inside a callback: in the new child, ``run()`` returns the child's command at
once, with nothing of the manager's loop on the stack, and the trampoline
runs it.  Every other decision runs as a loop callback: signals through the
one dispatch table of ``signalTable()``, children's wakeups through the
scoreboard's wake pipe, and timers.

When to start a child (pool.py):
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

from peak_lite.running.interfaces import IWaitingWork
from peak_lite.running.process import (
    ParentPipe, ProcessTemplate, Reaper, becomeSubreaper, childBootstrap, highFd,
    killLeftovers)
from peak_lite.running.procman import policy, restart
from peak_lite.running.procman.child import ChildCommand
from peak_lite.running.procman.loop import ManagerLoop
from peak_lite.running.procman.notify import Notifier
from peak_lite.running.procman.pool import Pool
from peak_lite.running.procman.privileges import dropPrivileges
from peak_lite.running.procman.records import Child
from peak_lite.running.procman.reloading import Reloading
from peak_lite.running.procman.scoreboard import openScoreboard
from peak_lite.running.procman.standby import Standbys
from peak_lite.running.procman.status import Tally, openStatus
from peak_lite.running.procman.view import ManagerView

log = logging.getLogger('peak_lite.procman')

__all__ = ['Manager', 'HELD_SIGNALS']

# Signals held pending from the start of ``peak procman`` until the loop handles
# them, and again from the moment the loop stops through exec or exit.
HELD_SIGNALS = {signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGTTIN, signal.SIGTTOU}
# Held too from a reload's exec until the new image's loop runs: the old
# generation serves meanwhile, and must be stopped gracefully, not orphaned.
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}
SAFETY_NET = 30.0       # an idle manager still reaps and reports this often


class Manager:
    """One procman instance.  ``run()`` returns an exit code, or a child's command.

    ``loadFailure``: in an image exec'd by a reload whose code no longer loads
    (``subject`` None), why; the previous generation keeps serving.
    """

    def __init__(self, cfg, subject, listeners, pidfile, stderr, environ, title,
                 loadFailure=None):
        self.cfg = cfg
        self.subject = subject
        self.listeners = listeners
        self.pidfile = pidfile
        self.stderr = stderr
        self.environ = environ
        self.title = title
        self.loadFailure = loadFailure
        self.pid = os.getpid()
        self.numbers = 0
        self.shutdown = None         # None, 'stop', 'quit' or 'restart'
        self.stopped = False
        self.carry = False           # stopped to exec with the children still serving
        self.draining = self.drained = False     # DrainDelay, after SIGTERM
        self.stoppingSent = False
        self.board = openScoreboard(cfg)
        self.notifier = Notifier(environ)
        self.parentPipe = ParentPipe()
        self.wakeR, self.wakeW = map(highFd, os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC))
        self.reaper = Reaper(self.processExited)
        self.loop = ManagerLoop()
        self.tally = Tally.fromEnvironment(environ)   # what the scoreboard forgets
        self.reloading = Reloading(
            cfg, environ, self.loop, self.reaper, listeners, pidfile, self.board,
            self.parentPipe, self.tally, self.pid, mode=self.mode,
            beginRestart=lambda: self.beginShutdown('restart'), switch=self.switch,
            previousGone=self.previousGone)
        self.standbys = Standbys(cfg.Standby, self.loop, self.board, self.tally, wanted=lambda: (
            not self.shutdown and self.pool.readySent and subject is not None))
        self.pool = Pool(cfg, self.loop, self.board, self.tally, self.notifier, listeners,
                         hasCode=subject is not None, ending=self.mode,
                         previousServing=self.reloading.previousServing,
                         onReady=self.poolReady, wakeStandby=self.standbys.wake,
                         waiting=subject.waitingFds()
                         if IWaitingWork.providedBy(subject) else ())
        self.template = ProcessTemplate(self.makeChildCommand, childSetup=self.childSetup)
        self._spawningSlot = None
        self._goFd = None            # the read end of a standby's pipe, while forking one
        self.view = ManagerView(cfg, self.loop, self.pid, environ, self.board, self.tally,
                                listeners, self.pool, self.reloading, mode=self.mode,
                                draining=lambda: self.draining)
        self.statusService = openStatus(self.view)

    def mode(self):
        """The shutdown mode: None while running, else 'stop', 'quit' or 'restart'."""
        return self.shutdown

    # -- running ---------------------------------------------------------

    def signalTable(self):
        """The one place a signal to the manager becomes an action (see loop.py)."""
        return {
            signal.SIGCHLD: self.reap,
            signal.SIGHUP: self.reloading.requestRestart,
            signal.SIGTERM: lambda: self.beginShutdown('stop'),
            signal.SIGINT: lambda: self.beginShutdown('stop'),
            signal.SIGQUIT: lambda: self.beginShutdown('quit'),
            signal.SIGUSR1: self.reopenLogs,
            signal.SIGUSR2: lambda: log.info("SIGUSR2 received: it has no meaning for the "
                                             "manager; ignored"),
            signal.SIGTTIN: lambda: self.pool.changeFloor(+1),
            signal.SIGTTOU: lambda: self.pool.changeFloor(-1),
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
        if self.reloading.previousServing() and self.subject is None:
            self.reloading.reloadFailed(
                f"the code no longer loads after its check passed: {self.loadFailure}; no "
                f"child will be started or replaced until a reload succeeds")
        elif self.reloading.previousServing():
            log.info("reload: %d children of the previous generation keep serving until "
                     "%d new ones are ready", self.reloading.previousCount(),
                     self.pool.target())
        self.reap()                  # children of a previous generation, carried by exec
        self.pool.maintain()
        while not self.stopped:
            self.pool.startFromStandby()
            if self.pool.startDue():
                stub = self.spawn()
            elif self.standbys.due():
                stub = self.spawn(standby=True)
            else:
                self.loop.runOnce()
                continue
            if stub is not None:
                return stub          # we are the new child: its command, for the trampoline
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
            self.reloading.execCarrying(self.pool.records(), self.statusService)  # returns if exec failed
            self.shutdown = 'stop'
            self.carry = False
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
                           self.reloading.takeConfig(), self.statusService)
            self.shutdown = 'stop'   # exec failed
        if not self.stoppingSent:
            self.notifier.send('STOPPING=1')
        if self.statusService is not None:
            self.statusService.close()
        self.listeners.close()
        self.board.close()
        if self.pidfile is not None:
            self.reloading.removeStatus()
            self.pidfile.remove()
        log.info("manager %d stopped", self.pid)
        return 0

    def safetyNet(self):
        """Reap and report now and then, even if no signal or child woke us."""
        self.loop.callLater(SAFETY_NET, self.safetyNet)
        self.reap()
        if not self.shutdown:
            self.pool.housekeeping()

    # -- forking -----------------------------------------------------------

    def spawn(self, standby=False):
        """Fork one child (a ``standby``: see standby.py), between loop turns.
        In the child: its command.  Else None."""
        self.numbers += 1
        limit = policy.requestLimit(self.cfg)
        slot = self.board.allocate(-1, self.numbers, limit)
        if slot is None:             # every slot held by children still stopping
            self.pool.slotsFull()
            return None
        self._spawningSlot = slot
        self._goFd = self.standbys.openPipe() if standby else None
        try:
            proxy, stub = self.template.spawn(self)
        except OSError as e:
            self.board.clear(slot)   # a failed fork keeps no slot
            if standby:
                self.standbys.forkFailed()
            self.pool.forkFailed(e)
            return None
        if stub is not None:
            return stub
        # The new child is what a waiting connection needs; our bookkeeping (and
        # the copy-on-write faults each of our first writes now takes) is not.
        # When the scheduler put the child on our CPU, let it run first.
        os.sched_yield()
        self.board.setPid(slot, proxy.pid)
        self.tally.spawned()
        self.reaper.track(proxy)
        child = Child(proxy, slot, self.numbers, limit)
        if standby:
            self.standbys.forked(child)
        else:
            self.pool.started(child)
        return None

    def childSetup(self):
        """Runs in a new child right after fork, with every signal blocked."""
        self.board.setPid(self._spawningSlot, os.getpid())   # whichever of us runs first
        self.loop.abandonInChild()
        if self.statusService is not None:
            self.statusService.closeInChild()
        self.notifier.close()        # the socket object's own close: no stale number later
        fds = [self.wakeR, self.pidfile.fd if self.pidfile is not None else None,
               self.board.fd]
        fds += self.reloading.fds() + self.standbys.fds()
        childBootstrap(self.pid, closeFds=[fd for fd in fds if fd is not None],
                       parentPipe=self.parentPipe)
        self.listeners.installInChild()
        self.stderr.installChildHandler()
        dropPrivileges(self.cfg, self.pid)

    def makeChildCommand(self):
        return ChildCommand(self.subject, self.board, self._spawningSlot, self.wakeW,
                            self.title, self.numbers, self._goFd)

    # -- events ----------------------------------------------------------

    def reap(self):
        self.reaper.reap()

    def processExited(self, proxy):
        """The reaper saw ``proxy`` exit: route it to whoever owns it."""
        for part in (self.standbys, self.reloading):   # the check, a previous generation
            if part.owns(proxy):
                part.exited(proxy)
                if self.shutdown:
                    self.checkShutdownDone()
                return
        child = self.pool.exited(proxy)
        if child is None:
            return
        self.reloading.newChildExited(child, proxy, self.pool.quickDeaths)
        if self.shutdown:
            self.checkShutdownDone()
        else:
            self.pool.maintain()

    def childWoke(self):
        """A child wrote to the wake pipe: it reached its request limit, or found
        every child busy.  The pool recycles what is due, and grows if a
        connection waits."""
        try:
            while os.read(self.wakeR, 512):
                pass
        except BlockingIOError:
            pass
        self.pool.childWoke()

    def poolReady(self):
        """This generation's first children are ready: READY=1, unless a previous
        generation still serves (then once it has gone); retire that one."""
        if not self.reloading.previousServing():
            self.sendReady()
        self.reloading.generationReady()

    def previousGone(self):
        if self.pool.readySent and not self.shutdown:
            self.sendReady()         # systemd's reload ends: only new code runs now

    def sendReady(self):
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notifier.send('READY=1', f'MAINPID={self.pid}', f'MONOTONIC_USEC={usec}',
                           f'STATUS={self.pool.statusText()}')

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
            self.stoppingSent = self.notifier.send('STOPPING=1')
            self.reloading.stop(quick=(mode == 'quit'))
        log.info("%s: stopping %d children", {'stop': 'graceful stop', 'quit': 'quick stop',
                                              'restart': 'restart'}[mode],
                 len(self.pool.records()))
        self.pool.stopAll(mode)
        self.standbys.killAll(mode)
        self.checkShutdownDone()

    def switch(self):
        """A reload's check passed (``Reload overlap``): stop the loop, the children
        still serving, to exec the new code carrying them (see reloading.py)."""
        self.shutdown = 'restart'
        self.carry = True
        self.stopped = True
        self.standbys.killAll('reload')      # they hold the old code
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notifier.send('RELOADING=1', f'MONOTONIC_USEC={usec}')
        log.info("reload: the %d children keep serving while the new code loads",
                 len(self.pool.records()))

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
        if (self.shutdown and not self.pool.records() and not self.standbys.pending()
                and self.reloading.settled()):
            self.stopped = True

    def reopenLogs(self):
        self.stderr.reopen()
        self.pool.signalAll('SIGUSR1')
