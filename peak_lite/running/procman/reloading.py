"""The manager's side of a reload: SIGHUP, its check, and the switch to a new image.

``Reloading`` owns what a reload needs across its course: the check
(``restart.ReloadCheck``), the outcome it publishes (``ReloadStatus``) and,
in the image exec'd by a reload, the previous generation (generation.py)
until it has gone.  ``requestRestart`` starts or coalesces the check;
``_checkDone`` acts on its outcome: refused, the pool keeps serving; with
``Reload overlap`` (the default) the manager switches, then ``execCarrying``
execs the new code with every child still serving (see generation.py for
how the new image adopts and retires them); with ``Reload stop``, the seed's
stop-then-exec.

The manager's lifecycle stays the manager's: what a reload needs of it comes
in through the constructor as callables, ``mode()`` (the shutdown mode, None
while it runs), ``beginRestart()`` (stop the children, then exec), ``switch()``
(stop the loop, children still serving, to exec carrying them) and
``previousGone()`` (the previous generation has stopped).
"""

import logging
import os

from zope.interface import implementer

from peak_lite.running.procman import restart
from peak_lite.running.procman.generation import OldGeneration, carryGeneration
from peak_lite.running.procman.interfaces import IReloading
from peak_lite.running.procman.reloadstatus import ReloadStatus

log = logging.getLogger('peak_lite.procman')

__all__ = ['Reloading', 'QUICK_DEATHS_REFUSE']

QUICK_DEATHS_REFUSE = 3  # new children dying at start, in a row: the reload failed


def _nothing():
    return None


@implementer(IReloading)
class Reloading:
    """See IReloading and the module docstring."""

    def __init__(self, cfg, environ, loop, reaper, listeners, pidfile, board, parentPipe,
                 tally, pid, mode=_nothing, beginRestart=_nothing, switch=_nothing,
                 previousGone=_nothing):
        self.cfg = cfg
        self.environ = environ
        self.listeners = listeners
        self.pidfile = pidfile
        self.board = board
        self.parentPipe = parentPipe
        self.tally = tally
        self.pid = pid
        self.mode = mode
        self.beginRestart = beginRestart
        self.switch = switch
        self.previousGone = previousGone
        self.reloads = ReloadStatus(cfg.PidFile, log)
        self.old = OldGeneration.fromEnviron(environ, cfg, loop, reaper)
        self.reloadPending = self.old is not None    # its outcome is ours to publish
        self.reloadAgain = False
        self.check = restart.ReloadCheck(environ, listeners, cfg.ReloadCheckTimeout, loop,
                                         reaper, self._checkDone, self.reloads.checking,
                                         configPath=cfg.filename)

    # -- what the manager asks ----------------------------------------------

    def previousServing(self):
        """See IReloading."""
        return self.old is not None

    def previousCount(self):
        return len(self.old) if self.old is not None else 0

    def settled(self):
        """See IReloading."""
        return self.old is None and not self.check.running

    def fds(self):
        """See IReloading."""
        fds = self.old.fds() if self.old is not None else []
        if self.check.configFd is not None:
            fds.append(self.check.configFd)
        return fds

    def owns(self, proxy):
        """See IReloading."""
        return (self.old is not None and self.old.owns(proxy)) or self.check.owns(proxy)

    def exited(self, proxy):
        """See IReloading."""
        if self.check.owns(proxy):
            self.check.exited(proxy)
            return
        self.tally.exits['reload'] += 1     # the previous generation, retired
        if self.old.exited(proxy, self.tally):
            self.old = None
            log.info("the previous generation has stopped")
            self.previousGone()
            self._reloadAgain()

    def newChildExited(self, child, proxy, quickDeaths):
        """See IReloading."""
        if (self.old is not None and self.reloadPending
                and quickDeaths >= QUICK_DEATHS_REFUSE):
            self.reloadFailed(f"the new generation's children die before they are ready "
                              f"(child {child.pid} {proxy.describeExit()}, "
                              f"{quickDeaths} in a row)")

    def stop(self, quick=False):
        """See IReloading."""
        self.check.kill()
        self.reloadAgain = False
        if self.old is not None:
            self.old.retire(quick=quick)

    def takeConfig(self):
        return self.check.takeConfig()

    def removeStatus(self):
        """At the manager's final exit."""
        self.reloads.remove()

    # -- the reload's course ------------------------------------------------

    def requestRestart(self):
        """SIGHUP: check the new config and code in a separate process, then restart."""
        if self.mode():
            log.info("SIGHUP ignored: the manager is already %s",
                     'restarting' if self.mode() == 'restart' else 'stopping')
            return
        self.reloads.requested()
        if self.old is not None and self.reloadPending:
            log.info("SIGHUP during a reload: one more reload will follow once the previous "
                     "generation has stopped")
            self.reloadAgain = True
            return
        self.check.request()

    def _checkDone(self, ok, reason):
        if self.mode():
            self.reloads.done(ok, reason)
            return
        if not ok:
            self.reloads.done(ok, reason)
            self.tally.reloaded(False)
            log.error("restart refused, the old children keep serving: %s", reason)
        elif self.cfg.Reload == 'overlap':
            self.reloads.switching()     # the new image publishes the outcome
            self.switch()
        else:
            self.reloads.done(ok, reason)
            self.tally.reloaded(True)
            self.beginRestart()

    def execCarrying(self, records, statusService=None):
        """exec with the children ``records`` carried (see generation.py), and the status
        listener with its keeper (status/keeper.py); returns if exec failed."""
        env = dict(self.environ)
        stopping = [c.pid for c in records.values() if c.stopStage is not None]
        pids, pipes = list(records), [self.parentPipe.writeFd]
        if self.old is not None:     # after a failed reload: still serving, carried again
            pids += self.old.pids()
            stopping += self.old.stopping()
            pipes += self.old.fds()
            self.old.absorbAll(self.tally)      # only this board goes with them
        boardFd = self.board.carryFd()
        if boardFd is None:
            log.warning("the scoreboard cannot be carried across the exec: the requests "
                        "the children serve from now on are not counted")
            for child in records.values():
                self.tally.absorb(child, self.board)
        carryGeneration(env, pids, stopping, pipes, boardFd)
        self.tally.carryAcrossExec(env)
        if self.board.path is not None:
            # The new image maps a fresh file: the old children keep writing to theirs.
            try:
                os.unlink(self.board.path)
            except OSError:
                pass
        restart.reexec(env, self.listeners, self.pidfile, self.pid, self.check.takeConfig(),
                       statusService)

    def generationReady(self):
        """See IReloading."""
        if self.old is not None:
            self.old.retire()
        if self.reloadPending:
            self.reloadPending = False
            self.reloads.done(True)
            self.tally.reloaded(True)
            log.info("reload done: the new generation serves")

    def reloadFailed(self, reason):
        """See IReloading."""
        self.reloadPending = False
        self.reloads.done(False, reason)
        self.tally.reloaded(False)
        log.error("reload failed, the previous generation keeps serving: %s", reason)
        self._reloadAgain()

    def _reloadAgain(self):
        """The reload in progress has ended: start the one a SIGHUP asked for meanwhile."""
        if self.reloadAgain and not self.mode():
            self.reloadAgain = False
            log.info("reloading again for the SIGHUP that arrived during the reload")
            self.check.request()
