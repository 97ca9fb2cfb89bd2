"""The pool's guards on single children: RequestTimeout's stack, then kill; MaxMemory.

Part of the pool (see pool.py), given it explicitly.  A child busy past
``RequestTimeout`` is asked for its Python stack (stuck.py), which is logged
with its request line before the child is killed; a child whose private
memory (USS, memory.py) is above ``MaxMemory`` is recycled after its current
request.  The guards decide nothing themselves: ``scaling.Policy`` says which
child is overdue or too big; the guards gather what it needs (the stack, the
memory) and have the pool stop and replace the child.
"""

import logging
import time

from zope.interface import implementer

from peak_lite.running.procman import memory, scaling, stuck
from peak_lite.running.procman.interfaces import IGuards

log = logging.getLogger('peak_lite.procman')

__all__ = ['Guards']


@implementer(IGuards)
class Guards:
    """See IGuards and the module docstring.  With MaxMemory, the memory check is
    timed from construction on."""

    def __init__(self, cfg, loop, policy, pool, ending):
        self.cfg = cfg
        self.loop = loop
        self.policy = policy
        self.pool = pool
        self.ending = ending
        if cfg.MaxMemory:
            self.loop.callLater(memory.MEMORY_CHECK_EVERY, self._memoryCheck)

    def askStack(self, child):
        """See IGuards."""
        child.stackAsked = True
        start, served = stuck.dumpSize(child.pid), child.requests
        child.proxy.sendSignal(stuck.STACK_SIGNAL)
        self.loop.callLater(stuck.STACK_WAIT, self._killStuck, child, start, served)

    def _killStuck(self, child, start, served):
        if not child.proxy.isRunning:
            return
        self.pool.refresh()
        if child.requests != served:
            # Its request ended in the meantime: the stack is history, the child is fine.
            child.stackAsked = False
            log.warning("child %d finished its request just after RequestTimeout; not "
                        "killed", child.pid)
            self.pool.housekeeping()
            return
        request, stack = stuck.readStack(child.pid, start)
        log.error("child %d has been busy on one request for %.2fs (RequestTimeout %.1fs): "
                  "%s; killing it. Its stack:\n%s", child.pid,
                  time.monotonic() - child.lastChange, self.cfg.RequestTimeout,
                  request or 'request line unknown (stuck outside Python)',
                  stack or '(none: the child did not answer)')
        if child.stopStage == 'HUP':         # draining: its replacement is arranged
            child.stopReason = 'timeout'
            self.pool.signalChild(child, 'TERM')
            return
        self.pool.replace(child, 'timeout', quick=True)
        self.pool.maintain()

    def _memoryCheck(self):
        """MaxMemory: recycle, after its current request, a child above it (USS)."""
        self.loop.callLater(memory.MEMORY_CHECK_EVERY, self._memoryCheck)
        if self.ending():
            return
        live = self.pool.live()
        usage = {c.pid: used['uss'] for c in live
                 for used in [memory.memoryOf(c.pid)] if used is not None}
        decisions = self.policy.memoryDecisions(live, self.pool.floor, usage)
        for decision in decisions:
            child = decision.child
            log.warning("child %d holds %.1f MB of private memory (USS), above MaxMemory "
                        "%.1f MB: recycling it after its current request%s", child.pid,
                        usage[child.pid] / 2**20, self.cfg.MaxMemory / 2**20,
                        ', once its replacement runs' if decision.action ==
                        scaling.REPLACE_FIRST else '')
            if decision.action == scaling.RECYCLE:
                self.pool.replace(child, decision.reason)
            else:
                self.pool.replaceFirst(child, decision.reason)
        if decisions:
            self.pool.maintain()
