"""The scoreboard in one process: layout, slots, busy(), wake and the file's safety.

Every test runs with the compiled slot (SlotStatus) and with its pure-Python twin.
"""

import math
import os
import pathlib
import stat
import struct
import time

import pytest
from zope.interface.verify import verifyClass, verifyObject

from peak_lite.running.interfaces import IWorkerStatus
from peak_lite.running.procman.interfaces import ProcmanError
from peak_lite.running.procman.scoreboard import (
    BUSY, IDLE, STARTING, STOPPING, UNKNOWN, CarriedBoard, Scoreboard, readScoreboard)
from peak_lite.running.procman import slotstatus
from peak_lite.running.procman.slotstatus import SlotStatus

HEADER = struct.Struct('<8sIIIiIId24x')
SLOT = struct.Struct('<iB3xQdII')


@pytest.fixture(autouse=True, params=['compiled', 'python'])
def twin(request, monkeypatch):
    """The test's SlotStatus: the compiled one, then PySlotStatus."""
    if request.param == 'python':
        monkeypatch.setitem(globals(), 'SlotStatus', slotstatus.PySlotStatus)
    return request.param


def test_slot_status_provides_worker_status():
    board = Scoreboard(4)
    status = SlotStatus(board, board.allocate(-1, 1))
    assert verifyClass(IWorkerStatus, SlotStatus) and verifyObject(IWorkerStatus, status)
    board.close()


def test_file_layout_mode_and_busy_bookkeeping(tmp_path):
    path = str(tmp_path / 'board')
    board = Scoreboard(3, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    slot = board.allocate(-1, 7, limit=2)
    assert board.read(slot)[1] == STARTING
    status = SlotStatus(board, slot)
    raw = pathlib.Path(path).read_bytes()
    magic, version, slots, size, manager, *_ = HEADER.unpack_from(raw)
    assert (magic, version, slots, size, manager) == (b'PEAKSB01', 3, 3, 256, os.getpid())
    assert len(raw) == 64 + 3 * 256
    with status.busy():
        pid, state, requests, changed, number, limit = SLOT.unpack_from(
            pathlib.Path(path).read_bytes(), 64 + 256 * slot)
        assert (pid, state, requests, number, limit) == (os.getpid(), BUSY, 0, 7, 2)
        assert board.counts()['busy'] == 1
    assert board.read(slot)[1:3] == (IDLE, 1)
    header, found = readScoreboard(path)
    assert header['managerPid'] == os.getpid()
    assert [(s['pid'], s['state'], s['requests'], s['limit']) for s in found] == [
        (os.getpid(), 'idle', 1, 2)]
    board.clear(slot)
    assert readScoreboard(path)[1] == [] and board.counts()['idle'] == 0
    board.close()


def test_manager_marks_stopping_without_clobbering_the_childs_fields():
    board = Scoreboard(2)
    slot = board.allocate(-1, 1, limit=5)
    status = SlotStatus(board, slot)
    board.setPid(slot, 4242)             # only the pid: the child's state stays
    assert board.read(slot)[:2] == (4242, IDLE)
    board.setPid(slot, os.getpid())
    with status.busy():
        board.markStopping(slot)
    assert board.read(slot)[1] == STOPPING and board.read(slot)[2] == 1
    assert status.stopping
    board.close()


def test_wake_when_every_child_is_busy_and_at_the_request_limit():
    board = Scoreboard(2)
    r, w = os.pipe2(os.O_NONBLOCK)
    a = SlotStatus(board, board.allocate(-1, 1), w)
    b = SlotStatus(board, board.allocate(-1, 2, limit=1), w)
    board.armWake(True)
    with a.busy():
        with pytest.raises(BlockingIOError):
            os.read(r, 10)               # b is idle: no wakeup
        with b.busy():
            assert os.read(r, 10) == b'!'
    assert os.read(r, 10) == b'!'        # b reached its limit of 1
    with a.busy():
        with b.busy():
            pass                         # the flag was spent: no wakeup per request
    with pytest.raises(BlockingIOError):
        os.read(r, 10)
    os.close(r)
    os.close(w)
    board.close()


def test_symlink_and_non_files_refused(tmp_path):
    target = tmp_path / 'target'
    target.write_bytes(b'precious')
    link = tmp_path / 'link'
    link.symlink_to(target)
    with pytest.raises(ProcmanError, match='symlink'):
        Scoreboard(2, str(link))
    assert target.read_bytes() == b'precious'
    with pytest.raises(ProcmanError, match='Is a directory'):
        Scoreboard(2, str(tmp_path))


def test_read_refuses_what_is_not_a_scoreboard(tmp_path):
    bad = tmp_path / 'bad'
    bad.write_bytes(b'x' * 100)
    with pytest.raises(ProcmanError, match='bad magic'):
        readScoreboard(str(bad))
    good = tmp_path / 'good'
    Scoreboard(4, str(good)).close()
    good.write_bytes(good.read_bytes()[:80])
    with pytest.raises(ProcmanError, match='truncated'):
        readScoreboard(str(good))


def test_file_mapping_keeps_no_descriptor_and_times_are_monotonic(tmp_path):
    path = str(tmp_path / 'board')
    board = Scoreboard(2, path)
    targets = [os.readlink(f'/proc/self/fd/{fd}') for fd in os.listdir('/proc/self/fd')
               if os.path.exists(f'/proc/self/fd/{fd}')]
    assert path not in targets        # a forked child inherits nothing it could ftruncate
    slot = board.allocate(-1, 1)
    status = SlotStatus(board, slot)
    before = time.monotonic()
    with status.busy():
        changed = board.read(slot)[3]
    assert before <= changed <= time.monotonic()
    board.close()


def test_a_corrupt_state_byte_and_time_read_as_unknown(tmp_path):
    path = str(tmp_path / 'board')
    board = Scoreboard(2, path)
    slot = board.allocate(4242, 1)
    board.map[board.offset(slot) + 4] = 200
    struct.pack_into('<d', board.map, board.offset(slot) + 16, float('inf'))
    pid, state, *_ = board.read(slot)
    assert (pid, state) == (4242, UNKNOWN) and math.isnan(board.read(slot)[3])
    assert board.counts()['unknown'] == 1
    found = readScoreboard(path)[1]
    assert [(s['state'], s['lastChange']) for s in found] == [('unknown', None)]
    board.close()


def test_each_request_is_counted_by_duration_bucket_and_status_class():
    board = Scoreboard(2)
    slot = board.allocate(-1, 1)
    status = SlotStatus(board, slot)
    for code in (200, 204, 302, 404, 500, 503):
        with status.busy(f'GET /{code}'):
            status.responded(code)
    with status.busy('POST /' + 'x' * 100):
        pass                         # no code: counted in the totals only
    total, codes, buckets = board.counters(slot)
    assert codes == (2, 1, 1, 2)
    assert sum(buckets) == 7 == board.read(slot)[2]
    assert buckets[0] == 7 and 0 <= total < 0.005 * 7   # each took microseconds
    assert board.requestLine(slot) == 'POST /' + 'x' * 58
    assert board.occupied()[0]['request'] == 'POST /' + 'x' * 58
    board.clear(slot)
    assert board.counters(slot) == (0.0, (0, 0, 0, 0), (0,) * 15)
    board.close()


def test_a_slow_request_lands_in_its_bucket_and_nonsense_sums_read_as_zero():
    board = Scoreboard(1)
    slot = board.allocate(-1, 1)
    status = SlotStatus(board, slot)
    with status.busy():
        deadline = time.monotonic() + 0.03
        while time.monotonic() < deadline:
            pass
    total, _, buckets = board.counters(slot)
    assert total >= 0.03 and buckets.index(1) == 3      # (0.025, 0.05]
    struct.pack_into('<d', board.map, board.offset(slot) + 32, math.nan)
    assert board.counters(slot)[0] == 0.0
    board.close()


def test_an_anonymous_board_cannot_be_shrunk_by_anyone_holding_it():
    board = Scoreboard(2)
    try:
        with pytest.raises(PermissionError):
            os.ftruncate(board.fd, 0)
        assert not os.get_inheritable(board.fd)
    finally:
        board.close()


@pytest.mark.parametrize('onFile', [False, True])
def test_a_carried_board_reads_the_live_counts_and_writes_nothing(tmp_path, onFile):
    board = Scoreboard(3, str(tmp_path / 'scoreboard') if onFile else None)
    slot = board.allocate(os.getpid(), 1)
    status = SlotStatus(board, slot)
    try:
        fd = board.carryFd()
        assert os.get_inheritable(fd) and board.carried
        carried = CarriedBoard(fd)
        with pytest.raises(OSError):
            os.fstat(fd)                 # closed: the mapping is all it keeps
        with status.busy():
            status.responded(200)
        assert carried.slotOf(os.getpid()) == slot and carried.slotOf(1) is None
        assert carried.read(slot)[2] == 1 and carried.counters(slot)[1][0] == 1
        with pytest.raises(TypeError):
            carried.map[0] = 0
        carried.close()
    finally:
        board.close()


def test_a_carried_descriptor_that_is_no_board_is_refused(tmp_path):
    path = tmp_path / 'junk'
    path.write_bytes(b'x' * 4096)
    with pytest.raises(ProcmanError, match='not one of this layout'):
        CarriedBoard(os.open(path, os.O_RDONLY))


def test_a_pid_over_a_free_state_counts_as_unknown_and_never_fails_the_manager():
    """No child writes that, but the manager must not fail on any slot's content."""
    board = Scoreboard(4)
    try:
        index = board.allocate(-1, 1)
        board.clear(index)
        board.setPid(index, 4242)       # a pid written over a slot just cleared
        counts = board.counts()
        assert counts['unknown'] == 1 and 'free' not in counts
    finally:
        board.close()


def test_a_reader_never_sees_a_slot_half_written():
    """A child rewrites its slot at every request while the manager reads it.

    ``struct.pack_into`` zero-fills its target before it packs, so a slot
    written with it reads, for an instant, as free, with no requests: a
    counter going backwards on /metrics, a pid over a free state.  A real
    forked child writes here as fast as it can while this process reads.
    """
    board = Scoreboard(2)
    slot = board.allocate(-1, 1)
    ready, go = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            status = SlotStatus(board, slot)
            status.responded(200)
            os.write(go, b'x')
            end = time.monotonic() + 3
            while time.monotonic() < end:
                for _ in range(1000):
                    with status.busy():
                        status.responded(200)
        finally:
            os._exit(0)
    try:
        board.setPid(slot, pid)
        os.read(ready, 1)
        seen, requests, counted = 0, 0, 0
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            who, state, served = board.read(slot)[:3]
            assert who == pid and state in (IDLE, BUSY), (who, state, served)
            assert served >= requests, (served, requests)
            codes = board.counters(slot)[1]
            assert codes[0] >= counted, (codes, counted)
            requests, counted, seen = served, codes[0], seen + 1
        assert requests > 1000 and seen > 1000, (requests, seen)   # both really ran
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(ready)
        os.close(go)
        board.close()
