"""The pool's record of one child: what the pool decided about it, and a copy of its slot.

The pool (pool.py) is the one owner of these records; it copies ``state``,
``requests`` and ``lastChange`` from the child's scoreboard slot on each
``refresh()``.  Only the pool and its parts (guards.py) write them; the manager
makes one per fork and hands it over; the others (the policy, the tally, the
status listener) only read them.
"""

import time

from peak_lite.running.procman.scoreboard import STATES

__all__ = ['Child']


class Child:
    """The pool's record of one child."""

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
