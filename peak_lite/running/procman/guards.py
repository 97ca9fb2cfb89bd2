"""The pool's guards on single children: RequestTimeout's stack, then kill; MaxMemory.

Part of ``Pool`` (see pool.py), kept apart so the pool's pacing reads on its
own.  A child busy past ``RequestTimeout`` is asked for its Python stack
(stuck.py), which is logged with its request line before the child is
killed; a child whose private memory (USS, memory.py) is above
``MaxMemory`` is recycled after its current request.
"""

import logging
import time

from peak_lite.running.procman import memory, scaling, stuck

log = logging.getLogger('peak_lite.procman')

__all__ = ['Guards']


class Guards:
    """RequestTimeout's stack and MaxMemory; a part of Pool, using its attributes."""

    def _askStack(self, child):
        """RequestTimeout: ask the child for its stack; kill it once that is logged."""
        child.stackAsked = True
        start, served = stuck.dumpSize(child.pid), child.requests
        child.proxy.sendSignal(stuck.STACK_SIGNAL)
        self.loop.callLater(stuck.STACK_WAIT, self._killStuck, child, start, served)

    def _killStuck(self, child, start, served):
        if not child.proxy.isRunning:
            return
        self.refresh()
        if child.requests != served:
            # Its request ended in the meantime: the stack is history, the child is fine.
            child.stackAsked = False
            log.warning("child %d finished its request just after RequestTimeout; not "
                        "killed", child.pid)
            self.housekeeping()
            return
        request, stack = stuck.readStack(child.pid, start)
        log.error("child %d has been busy on one request for %.2fs (RequestTimeout %.1fs): "
                  "%s; killing it. Its stack:\n%s", child.pid,
                  time.monotonic() - child.lastChange, self.cfg.RequestTimeout,
                  request or 'request line unknown (stuck outside Python)',
                  stack or '(none: the child did not answer)')
        if child.stopStage == 'HUP':         # draining: its replacement is arranged
            child.stopReason = 'timeout'
            self._signalChild(child, 'TERM')
            return
        self.stopChild(child, 'timeout', quick=True)
        self.owed += 1
        self.maintain()

    def _memoryCheck(self):
        """MaxMemory: recycle, after its current request, a child above it (USS)."""
        self.loop.callLater(memory.MEMORY_CHECK_EVERY, self._memoryCheck)
        if self.shutdown:
            return
        live = self.liveChildren()
        usage = {c.pid: used['uss'] for c in live
                 for used in [memory.memoryOf(c.pid)] if used is not None}
        decisions = self.policy.memoryDecisions(live, self.floor, usage)
        for decision in decisions:
            child = decision.child
            log.warning("child %d holds %.1f MB of private memory (USS), above MaxMemory "
                        "%.1f MB: recycling it after its current request%s", child.pid,
                        usage[child.pid] / 2**20, self.cfg.MaxMemory / 2**20,
                        ', once its replacement runs' if decision.action ==
                        scaling.REPLACE_FIRST else '')
            if decision.action == scaling.RECYCLE:
                self.stopChild(child, decision.reason)
            else:
                child.replacing = decision.reason
            self.owed += 1
        if decisions:
            self.maintain()
