"""A child's IWorkerStatus: its own scoreboard slot, written with plain stores.

See scoreboard.py for the layout.  One request at a time: ``busy()`` returns
the status itself as the context manager, so the request path allocates
nothing and makes no system call (``clock()`` reads the vDSO).

The request path (``busy``, ``responded`` and the with-block) is a base
class with two twins that write the same bytes: ``PySlotCore`` here, and
``_slotcore.SlotCore``, compiled at install when a C compiler is there
(setup.py; optional).  Timed in one process, Python spends 2.2 µs a
request on these stores; the compiled twin 0.26 µs.  ``PEAK_LITE_PURE_PYTHON=1``
leaves the compiled one unused.  The counters live only in the slot: each
request adds to what is there (the child is its slot's only writer).
"""

import bisect
import os

from zope.interface import implementer

from peak_lite.running.interfaces import IStandbyStatus
from peak_lite.running.procman.scoreboard import (
    BUCKETS, BUCKETS_OFFSET, BUSY, CODES_OFFSET, COUNT, HEADER, IDLE, LIMIT, LIMIT_OFFSET,
    LINE, LINE_OFFSET, SLOT, SLOT_SIZE, STANDBY, STARTING, STOPPING, SUM,
    SUM_OFFSET, WAKE, WAKE_OFFSET, clock)
from peak_lite.util.shared import store

__all__ = ['SlotStatus', 'PySlotStatus', 'PySlotCore', 'SlotCore', 'SPENT_GRACE']

SPENT_GRACE = 1.0   # seconds a child at its request limit waits for its replacement


class PySlotCore:
    """A slot's request path: ``busy()``, ``responded()`` and the with-block.

    ``PySlotCore(map, offset)``.  Entering writes BUSY and the time; leaving
    adds the request's time, its duration bucket and status class to the
    slot's counters, counts it, and writes IDLE (STOPPING once the manager
    asked) and the time.  The subclass gives ``_wakeIfAllBusy()``, called
    when a request starts while the manager's wake flag is up, and
    ``_spent(now)``, called when the request limit is reached.
    """

    asked = False       # the manager wrote STOPPING in our slot
    spentAt = 0.0       # when this child served its request limit
    started = 0.0
    code = 0

    def __init__(self, map, offset):
        self.map = map
        self.offset = offset
        self.limit = LIMIT.unpack_from(map, offset + LIMIT_OFFSET)[0]

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
        map, offset = self.map, self.offset
        pid, state, requests, _, number = SLOT.unpack_from(map, offset)
        if state == STOPPING:
            self.asked = True        # the manager asked this child to stop
        self.started = now = clock()
        store(map, offset, SLOT, pid, BUSY, requests, now, number)
        if WAKE.unpack_from(map, WAKE_OFFSET)[0]:
            self._wakeIfAllBusy()
        return self

    def __exit__(self, excType, exc, tb):
        now = clock()
        spent = now - self.started
        map, offset = self.map, self.offset
        store(map, offset + SUM_OFFSET, SUM, SUM.unpack_from(map, offset + SUM_OFFSET)[0] + spent)
        _count(map, offset + BUCKETS_OFFSET + 8 * bisect.bisect_left(BUCKETS, spent))
        kind = self.code // 100 - 2
        if 0 <= kind < 4:
            _count(map, offset + CODES_OFFSET + 8 * kind)
        pid, state, requests, _, number = SLOT.unpack_from(map, offset)
        requests += 1
        if state == STOPPING:
            self.asked = True
        store(map, offset, SLOT, pid, STOPPING if self.asked else IDLE, requests, now, number)
        if requests == self.limit:
            self._spent(now)
        return False


def _count(map, at):
    store(map, at, COUNT, COUNT.unpack_from(map, at)[0] + 1)


def _compiled():
    if os.environ.get('PEAK_LITE_PURE_PYTHON'):
        return PySlotCore
    try:
        from peak_lite.running.procman._slotcore import SlotCore
    except ImportError:     # built without a C compiler: the same bytes, slower
        return PySlotCore
    return SlotCore


SlotCore = _compiled()


class _Slot:
    """What SlotStatus adds to its request path: see there."""

    @property
    def stopping(self):
        """See IWorkerStatus.  At its request limit a child takes no new connection
        while its replacement starts, for SPENT_GRACE at most: if none has come by
        then (no fork succeeds), it serves on rather than leave the pool empty."""
        return self.asked or (self.spentAt > 0.0 and clock() - self.spentAt < SPENT_GRACE)

    def __init__(self, board, index, wakeFd=None, goFd=None):
        super().__init__(board.map, board.offset(index))
        self.map = board.map        # the compiled core keeps its own reference, unexposed
        self.slots = board.slots
        self.wakeFd = wakeFd
        self.pid = os.getpid()
        self.goFd = goFd
        self._mark(IDLE if goFd is None else STANDBY)

    def _mark(self, state):
        _, _, requests, _, number = SLOT.unpack_from(self.map, self.offset)
        store(self.map, self.offset, SLOT, self.pid, state, requests, clock(), number)

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
            self._mark(IDLE)
            begin(True)

        loop.add_reader(self.goFd, woken)

    def _spent(self, now):
        # Time to recycle, once in this child's life: it takes no new
        # connection (see stopping) and the manager, woken, replaces it.
        # Its slot stays idle until the manager says stopping.
        self.spentAt = now
        self._wake()

    def _wakeIfAllBusy(self):
        if self.wakeFd is None:
            return
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


@implementer(IStandbyStatus)
class SlotStatus(_Slot, SlotCore):
    """A child's IWorkerStatus: its own scoreboard slot.  See IWorkerStatus.

    ``SlotStatus(board, index, wakeFd=None, goFd=None)``.  ``busy()`` returns
    the status itself, a context manager: one request at a time (see
    PySlotCore).  Compiled when it could be built.
    """


@implementer(IStandbyStatus)
class PySlotStatus(_Slot, PySlotCore):
    """SlotStatus on the pure-Python request path: the reference its compiled twin matches."""
