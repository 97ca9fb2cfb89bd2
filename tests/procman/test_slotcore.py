"""The compiled slot (``_slotcore.SlotCore``) against its pure-Python twin, ``PySlotCore``.

Both must write the same bytes for the same requests; the scoreboard tests
(test_scoreboard.py) run each behaviour with both.
"""

import os

import pytest
from hypothesis import given, settings, strategies as st

from peak_lite.running.procman.scoreboard import (
    BUCKETS, BUCKETS_OFFSET, Scoreboard, SUM_OFFSET, clock)
from peak_lite.running.procman.slotstatus import (
    PySlotCore, PySlotStatus, SlotCore, SlotStatus)

TWINS = [SlotStatus, PySlotStatus]
TIME = slice(16, 24)            # when the state last changed
TIMED = slice(SUM_OFFSET, BUCKETS_OFFSET + 8 * (len(BUCKETS) + 1))   # sum and buckets


def test_the_compiled_slot_is_built():
    assert SlotCore is not PySlotCore, (
        "peak_lite.running.procman._slotcore was not built: install a C compiler and "
        "Python's headers (apt-get install gcc python3-dev), then rm .venv/.installed; make test")


class Board:
    """A board of two slots, one child status on slot 0 and its wake pipe."""

    def __init__(self, cls, limit):
        self.board = Scoreboard(2)
        self.read, write = os.pipe2(os.O_NONBLOCK)
        self.status = cls(self.board, self.board.allocate(-1, 1, limit=limit), write)
        self.other = self.board.allocate(4242, 2)      # a sibling, idle or busy
        self.wakes = 0

    def slot(self):
        start = self.board.offset(0)
        return bytes(self.board.map[start:start + 256])

    def apply(self, op, arg):
        status = self.status
        if op == 'busy':
            with status.busy(arg):
                status.responded(arg2code(arg))
        elif op == 'silent':
            with status.busy():
                pass            # no status code: counted in the totals only
        elif op == 'stop':
            self.board.markStopping(0)
        elif op == 'wake':
            self.board.armWake(arg)
        elif op == 'sibling':
            self.board.map[self.board.offset(self.other) + 4] = arg
        try:
            self.wakes += len(os.read(self.read, 100))
        except BlockingIOError:
            pass

    def close(self):
        os.close(self.read)
        os.close(self.status.wakeFd)
        self.board.close()


def arg2code(line):
    return 100 + len(line or '') * 37 % 500 if not isinstance(line, bytes) else 200


lines = st.one_of(st.none(), st.text(max_size=80), st.binary(max_size=80))
ops = st.one_of(st.tuples(st.just('busy'), lines),
                st.tuples(st.just('silent'), st.none()),
                st.tuples(st.just('stop'), st.none()),
                st.tuples(st.just('wake'), st.booleans()),
                st.tuples(st.just('sibling'), st.sampled_from([2, 3])))    # idle, busy


@settings(max_examples=200, deadline=None)
@given(st.lists(ops, max_size=30), st.integers(0, 5))
def test_both_twins_write_the_same_slot(steps, limit):
    boards = [Board(cls, limit) for cls in TWINS]
    try:
        for op, arg in steps:
            for b in boards:
                b.apply(op, arg)
        compiled, python = (b.slot() for b in boards)
        for raw in (compiled, python):
            requests = int.from_bytes(raw[8:16], 'little')
            assert sum(int.from_bytes(raw[i:i + 8], 'little')
                       for i in range(BUCKETS_OFFSET, TIMED.stop, 8)) == requests
        assert compiled[:TIME.start] + compiled[TIME.stop:TIMED.start] == \
            python[:TIME.start] + python[TIME.stop:TIMED.start]
        assert compiled[TIMED.stop:] == python[TIMED.stop:]
        assert [b.status.stopping for b in boards] == [boards[1].status.stopping] * 2
        assert [b.status.asked for b in boards] == [boards[1].status.asked] * 2
        assert boards[0].wakes == boards[1].wakes
    finally:
        for b in boards:
            b.close()


@pytest.mark.parametrize('cls', TWINS)
@pytest.mark.parametrize('bucket', range(len(BUCKETS) + 1))
def test_a_request_lands_in_the_bucket_of_its_duration(cls, bucket):
    low = BUCKETS[bucket - 1] if bucket else 0.0
    high = BUCKETS[bucket] if bucket < len(BUCKETS) else 20.0
    board = Scoreboard(1)
    try:
        status = cls(board, board.allocate(-1, 1))
        with status.busy():
            status.started = clock() - (low + high) / 2
        total, _, buckets = board.counters(0)
        assert buckets[bucket] == 1 == sum(buckets)
        assert low < total <= high
    finally:
        board.close()


@pytest.mark.parametrize('cls', TWINS)
def test_the_request_line_is_utf8_cut_at_64_bytes_and_padded(cls):
    board = Scoreboard(1)
    try:
        status = cls(board, board.allocate(-1, 1))
        line = 'GET /' + 'é' * 40
        with status.busy(line):
            pass
        assert board.requestLine(0) == line.encode()[:64].decode('utf-8', 'replace')
        with status.busy(b'POST /x'):
            pass
        with status.busy():
            pass                    # no line given: the last one stays
        assert board.requestLine(0) == 'POST /x'
        with status.busy('GET /\udcff'):
            pass                    # a lone surrogate is replaced, not refused
        assert board.requestLine(0) == 'GET /?'
        with pytest.raises(TypeError):
            status.busy(42)
    finally:
        board.close()


@pytest.mark.parametrize('cls', TWINS)
def test_a_closed_board_raises_rather_than_write_into_unmapped_memory(cls):
    board = Scoreboard(1)
    status = cls(board, board.allocate(-1, 1))
    board.close()
    with pytest.raises(ValueError):
        status.busy('GET /')
    with pytest.raises(ValueError):
        status.__enter__()


def test_the_compiled_slot_refuses_an_offset_that_is_no_slot():
    board = Scoreboard(2)
    try:
        for offset in (0, 65, board.offset(2)):
            with pytest.raises(ValueError, match='not a slot'):
                SlotCore(board.map, offset)
        core = SlotCore(board.map, board.offset(1))
        with pytest.raises(RuntimeError, match='already bound'):
            core.__init__(board.map, board.offset(0))
        with pytest.raises(RuntimeError, match='was not called'):
            SlotCore.__new__(SlotCore).__enter__()
    finally:
        board.close()
