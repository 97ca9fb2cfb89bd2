"""The manager's side of a reload: SIGHUP, its check, and the switch to a new image.

Part of ``Manager`` (see manager.py), kept apart so the manager's core reads
on its own.  ``requestRestart`` starts or coalesces the check
(``restart.ReloadCheck``); ``_checkDone`` acts on its outcome: refused, the
pool keeps serving; with ``Reload overlap`` (the default) ``switch`` then
``execCarrying`` exec the new code with every child still serving (see
generation.py for how the new image adopts and retires them); with
``Reload stop``, the seed's stop-then-exec.
"""

import logging
import os
import time

from peak_lite.running.procman import restart
from peak_lite.running.procman.generation import carryGeneration

log = logging.getLogger('peak_lite.procman')

__all__ = ['Reloading']


class Reloading:
    """SIGHUP and the reload sequence; a part of Manager, using its attributes."""

    def requestRestart(self):
        """SIGHUP: check the new config and code in a separate process, then restart."""
        if self.shutdown:
            log.info("SIGHUP ignored: the manager is already %s",
                     'restarting' if self.shutdown == 'restart' else 'stopping')
            return
        self.reloads.requested()
        if self.old is not None and self.reloadPending:
            log.info("SIGHUP during a reload: one more reload will follow once the previous "
                     "generation has stopped")
            self.reloadAgain = True
            return
        self.check.request()

    def _checkDone(self, ok, reason):
        if self.shutdown:
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
            self.beginShutdown('restart')

    # -- reload with overlapping generations (see generation.py) -----------

    def switch(self):
        """The check passed: exec the new code with every child still serving."""
        self.shutdown = 'restart'
        self.carry = True
        self.stopped = True
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notifier.send('RELOADING=1', f'MONOTONIC_USEC={usec}')
        log.info("reload: the %d children keep serving while the new code loads",
                 len(self.children))

    def execCarrying(self):
        """exec with the children carried (see generation.py); returns if exec failed."""
        env = dict(self.environ)
        stopping = [c.pid for c in self.children.values() if c.stopStage is not None]
        pids, pipes = list(self.children), [self.parentPipe.writeFd]
        if self.old is not None:     # after a failed reload: still serving, carried again
            pids += self.old.pids()
            stopping += self.old.stopping()
            pipes += self.old.fds()
        carryGeneration(env, pids, stopping, pipes)
        for child in self.children.values():
            self.tally.absorb(child, self.board)     # the new image cannot read their slots
        self.tally.carryAcrossExec(env)
        if self.board.path is not None:
            # The new image maps a fresh file: the old children keep writing to theirs.
            try:
                os.unlink(self.board.path)
            except OSError:
                pass
        restart.reexec(env, self.listeners, self.pidfile, self.pid, self.check.takeConfig(),
                       self.statusService)
        self.shutdown = 'stop'
        self.carry = False

    def generationReady(self):
        """Prefork children of this image are ready: the previous generation can go."""
        if self.old is not None:
            self.old.retire()
        if self.reloadPending:
            self.reloadPending = False
            self.reloads.done(True)
            self.tally.reloaded(True)
            log.info("reload done: the new generation serves")

    def reloadFailed(self, reason):
        self.reloadPending = False
        self.reloads.done(False, reason)
        self.tally.reloaded(False)
        log.error("reload failed, the previous generation keeps serving: %s", reason)
        self._reloadAgain()

    def oldGone(self):
        log.info("the previous generation has stopped")
        if self.readySent and not self.shutdown:
            self.sendReady()         # systemd's reload ends: only new code runs now
        self._reloadAgain()

    def _reloadAgain(self):
        """The reload in progress has ended: start the one a SIGHUP asked for meanwhile."""
        if self.reloadAgain and not self.shutdown:
            self.reloadAgain = False
            log.info("reloading again for the SIGHUP that arrived during the reload")
            self.check.request()
