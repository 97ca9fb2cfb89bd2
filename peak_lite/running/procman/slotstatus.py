"""A child's IWorkerStatus: its own scoreboard slot, written with plain stores.

See scoreboard.py for the layout.  One request at a time: ``busy()`` returns
the status itself as the context manager, so the request path allocates
nothing and makes no system call (``clock()`` reads the vDSO).
"""

import bisect
import os

from zope.interface import implementer

from peak_lite.running.interfaces import IStandbyStatus
from peak_lite.running.procman.scoreboard import (
    BUCKETS, BUCKETS_OFFSET, BUSY, CODES_OFFSET, COUNT, HEADER, IDLE, LIMIT, LIMIT_OFFSET,
    LINE, LINE_OFFSET, SLOT, SLOT_SIZE, STANDBY, STARTING, STATE, STATE_OFFSET, STOPPING, SUM,
    SUM_OFFSET, WAKE, WAKE_OFFSET, clock)
from peak_lite.util.shared import store

__all__ = ['SlotStatus', 'SPENT_GRACE']

SPENT_GRACE = 1.0   # seconds a child at its request limit waits for its replacement


@implementer(IStandbyStatus)
class SlotStatus:
    """A child's IWorkerStatus: its own scoreboard slot.  See IWorkerStatus.

    ``busy()`` returns the status itself, a context manager: one request at
    a time.  Its counters live here and are copied into the slot with plain
    stores as each request ends.
    """

    asked = False       # the manager wrote STOPPING in our slot
    spentAt = 0.0       # when this child served its request limit

    @property
    def stopping(self):
        """See IWorkerStatus.  At its request limit a child takes no new connection
        while its replacement starts, for SPENT_GRACE at most: if none has come by
        then (no fork succeeds), it serves on rather than leave the pool empty."""
        return self.asked or (self.spentAt > 0.0 and clock() - self.spentAt < SPENT_GRACE)

    def __init__(self, board, index, wakeFd=None, goFd=None):
        self.map = board.map
        self.offset = board.offset(index)
        self.slots = board.slots
        self.wakeFd = wakeFd
        self.pid = os.getpid()
        pid, _, self.requests, _, self.number = SLOT.unpack_from(self.map, self.offset)
        self.limit = LIMIT.unpack_from(self.map, self.offset + LIMIT_OFFSET)[0]
        total, codes, buckets = board.counters(index)
        self.total = total
        self.codes = list(codes)
        self.buckets = list(buckets)
        self.code = 0
        self.started = 0.0
        self.goFd = goFd
        store(self.map, self.offset, SLOT, self.pid, IDLE if goFd is None else STANDBY,
              self.requests, clock(), self.number)

    def whenNeeded(self, mainLoop, begin):
        """See IStandbyStatus.  A standby (see standby.py) runs its loop with only
        its pipe watched, and begins serving when the manager writes a byte."""
        if self.goFd is None:
            begin()
            return
        loop = mainLoop.eventLoop

        def woken():
            loop.remove_reader(self.goFd)
            go = os.read(self.goFd, 1)
            os.close(self.goFd)
            self.goFd = None
            if not go:
                mainLoop.stop()      # the manager closed the pipe: it exited or exec'd
                return
            store(self.map, self.offset, SLOT, self.pid, IDLE, self.requests, clock(),
                  self.number)
            begin(True)

        loop.add_reader(self.goFd, woken)

    def busy(self, line=None):
        """See IWorkerStatus."""
        if line is not None:
            if type(line) is str:
                line = line.encode('utf-8', 'replace')
            store(self.map, self.offset + LINE_OFFSET, LINE, line[:64])
        self.code = 0
        return self

    def responded(self, code):
        """See IWorkerStatus."""
        self.code = code

    def __enter__(self):
        if STATE.unpack_from(self.map, self.offset + STATE_OFFSET)[0] == STOPPING:
            self.asked = True        # the manager asked this child to stop
        self.started = now = clock()
        store(self.map, self.offset, SLOT, self.pid, BUSY, self.requests, now, self.number)
        if self.wakeFd is not None and WAKE.unpack_from(self.map, WAKE_OFFSET)[0]:
            self._wakeIfAllBusy()
        return self

    def __exit__(self, excType, exc, tb):
        now = clock()
        spent = now - self.started
        offset = self.offset
        self.total += spent
        store(self.map, offset + SUM_OFFSET, SUM, self.total)
        bucket = bisect.bisect_left(BUCKETS, spent)
        self.buckets[bucket] += 1
        store(self.map, offset + BUCKETS_OFFSET + 8 * bucket, COUNT, self.buckets[bucket])
        kind = self.code // 100 - 2
        if 0 <= kind < 4:
            self.codes[kind] += 1
            store(self.map, offset + CODES_OFFSET + 8 * kind, COUNT, self.codes[kind])
        self.requests += 1
        if STATE.unpack_from(self.map, offset + STATE_OFFSET)[0] == STOPPING:
            self.asked = True
        store(self.map, offset, SLOT, self.pid, STOPPING if self.asked else IDLE,
              self.requests, now, self.number)
        if self.requests == self.limit:
            # Time to recycle, once in this child's life: it takes no new
            # connection (see stopping) and the manager, woken, replaces it.
            # Its slot stays idle until the manager says stopping.
            self.spentAt = now
            self._wake()
        return False

    def _wakeIfAllBusy(self):
        for i in range(self.slots):
            pid, state = SLOT.unpack_from(self.map, HEADER.size + SLOT_SIZE * i)[:2]
            if pid and state in (STARTING, IDLE):
                return
        store(self.map, WAKE_OFFSET, WAKE, 0)
        self._wake()

    def _wake(self):
        if self.wakeFd is None:
            return
        try:
            os.write(self.wakeFd, b'!')
        except (BlockingIOError, BrokenPipeError):
            pass

