"""The manager's parts as objects, in one process: contracts and what each owns.

Each part is built the way the manager builds it, from explicit
collaborators: a real config, loop, scoreboard and tally, with hand-written
fakes for processes (no fork happens here).
"""

import socket
import time

import pytest
from zope.interface.verify import verifyObject

from peak_lite.running.procman.config import loadConfig
from peak_lite.running.procman.interfaces import (
    IGrowth, IGuards, IManagerView, IPool, IReloading)
from peak_lite.running.procman.loop import ManagerLoop
from peak_lite.running.procman.notify import Notifier
from peak_lite.running.procman.pool import Child, Pool
from peak_lite.running.procman.reloading import Reloading
from peak_lite.running.procman.scoreboard import BUSY, IDLE, SLOT, openScoreboard
from peak_lite.running.procman.status import Tally
from peak_lite.running.procman.view import ManagerView
from peak_lite.running.process import ParentPipe, Reaper
from peak_lite.running.sockets import Listeners


class FakeProxy:
    """A child process that never existed: signals are recorded, not sent."""

    def __init__(self, pid):
        self.pid = pid
        self.startedAt = time.monotonic()
        self.isRunning = True
        self.exitStatus = 0
        self.exitSignal = None
        self.signals = []

    def sendSignal(self, sig):
        self.signals.append(sig)
        return True

    def describeExit(self):
        return "exited with status 0"


class FakeListeners:
    """``fds()`` of real sockets the test controls."""

    def __init__(self, socks=(), inherited=False):
        self.socks = list(socks)
        self.inherited = inherited

    def fds(self):
        return [s.fileno() for s in self.socks]


class Parts:
    """A config, a loop, a scoreboard, a tally and a pool, as the manager makes them."""

    def __init__(self, tmp_path, text="", listeners=None):
        path = tmp_path / 'app.conf'
        path.write_text("Command CGI tests.procman.apps:hello\nMinProcesses 1\n"
                        "MaxProcesses 4\nStartInterval 0.5\n" + text)
        self.cfg = loadConfig(str(path))
        self.loop = ManagerLoop()
        self.board = openScoreboard(self.cfg)
        self.tally = Tally()
        self.mode = None
        self.ready = []
        self.listeners = listeners or FakeListeners()
        self.pool = Pool(self.cfg, self.loop, self.board, self.tally, Notifier({}),
                         self.listeners, ending=lambda: self.mode,
                         onReady=lambda: self.ready.append(True))
        self.pids = iter(range(900000, 999999))

    def fork(self):
        """What the manager does after a fork, with a fake child."""
        slot = self.board.allocate(-1, 1)
        proxy = FakeProxy(next(self.pids))
        self.board.setPid(slot, proxy.pid)
        child = Child(proxy, slot, 1, 0)
        self.pool.started(child)
        return child

    def setState(self, child, state):
        requests = self.board.read(child.slot)[2]
        SLOT.pack_into(self.board.map, self.board.offset(child.slot), child.pid, state,
                       requests, time.monotonic(), child.number)

    def close(self):
        self.loop.close()
        self.board.close()


@pytest.fixture
def parts(tmp_path):
    made = Parts(tmp_path)
    yield made
    made.close()


def test_each_part_provides_its_contract(parts, tmp_path):
    assert verifyObject(IPool, parts.pool)
    assert verifyObject(IGrowth, parts.pool.growth)
    assert verifyObject(IGuards, parts.pool.guards)
    pipe = ParentPipe()
    try:
        reloading = Reloading(parts.cfg, {}, parts.loop, Reaper(), Listeners(), None,
                              parts.board, pipe, parts.tally, 1)
        assert verifyObject(IReloading, reloading)
        assert not reloading.previousServing() and reloading.settled()
        view = ManagerView(parts.cfg, parts.loop, 1, {}, parts.board, parts.tally,
                           Listeners(), parts.pool, reloading, mode=lambda: parts.mode,
                           draining=lambda: False)
        assert verifyObject(IManagerView, view)
        assert view.old is None
    finally:
        pipe.close()


class NoReload:
    old = None


def test_the_pool_alone_owns_the_records_others_read_them(parts):
    child = parts.fork()
    records = parts.pool.records()
    assert dict(records) == {child.pid: child}
    with pytest.raises(TypeError):
        records[1] = child
    view = ManagerView(parts.cfg, parts.loop, 1, {}, parts.board, parts.tally, Listeners(),
                       parts.pool, NoReload(), mode=lambda: parts.mode,
                       draining=lambda: False)
    assert child.pid in view.children and view.shutdown is None
    parts.mode = 'stop'
    assert view.shutdown == 'stop'
    # An exit comes back through the pool, which books it and frees the slot.
    assert parts.pool.exited(FakeProxy(123)) is None
    assert parts.pool.exited(child.proxy) is child
    assert not parts.pool.records() and parts.board.read(child.slot)[0] == 0


def test_the_pool_tells_its_owner_when_ready_through_the_callable(parts):
    child = parts.fork()
    assert not parts.ready
    parts.setState(child, IDLE)
    parts.pool.maintain()
    assert parts.ready == [True] and parts.pool.readySent


def test_growth_is_paced_by_start_interval_after_a_growth_start(parts):
    first = parts.fork()
    parts.setState(first, IDLE)
    parts.pool.maintain()
    parts.setState(first, BUSY)
    parts.pool.wantGrowth()
    assert parts.pool.startDue()
    began = time.monotonic()
    second = parts.fork()
    parts.setState(second, BUSY)
    parts.pool.wantGrowth()
    assert not parts.pool.startDue()        # StartInterval 0.5 has not passed
    timer = parts.pool.startTimer
    assert timer is not None and abs(timer.when - (began + 0.5)) < 0.05


class Backlog:
    """A listening unix socket with ``n`` connections waiting, never accepted."""

    def __init__(self, tmp_path, n=1):
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(tmp_path / 'backlog.sock'))
        self.server.listen(8)
        self.clients = []
        for _ in range(n):
            c = socket.socket(socket.AF_UNIX)
            c.connect(str(tmp_path / 'backlog.sock'))
            self.clients.append(c)

    def close(self):
        for c in self.clients + [self.server]:
            c.close()


def readyWith(tmp_path, inherited):
    """A pool that becomes ready while a connection waits on its socket."""
    backlog = Backlog(tmp_path)
    made = Parts(tmp_path, listeners=FakeListeners([backlog.server], inherited))
    child = made.fork()
    made.setState(child, IDLE)
    made.pool.maintain()
    assert made.pool.readySent
    return made, backlog


@pytest.mark.parametrize('inherited', [False, True])
def test_a_backlog_at_ready_delays_growth_only_on_sockets_open_before_us(tmp_path,
                                                                       inherited):
    """On sockets the manager bound itself, what waits at ready is load on a pool that
    is starting; on inherited ones (a restart's gap) it is worked off first."""
    made, backlog = readyWith(tmp_path, inherited)
    try:
        paced = made.pool.lastGrowth + made.cfg.StartInterval
        if inherited:
            assert paced > time.monotonic() + 0.4
        else:
            assert paced < time.monotonic()
    finally:
        made.close()
        backlog.close()


def test_a_child_between_two_requests_does_not_hide_a_waiting_connection(tmp_path):
    """Every child but one busy, that one just idle, and a connection waiting: the
    pool is looked at again in a moment instead of cooling (and the wake flag's
    re-arm waiting a second)."""
    made, backlog = readyWith(tmp_path, False)
    try:
        busy = made.fork()
        made.setState(busy, BUSY)
        between = next(c for c in made.pool.live() if c is not busy)
        made.setState(between, IDLE)
        growth = made.pool.growth
        growth.woke()
        made.pool.refresh()
        growth.look()
        assert not made.pool.grow
        made.setState(between, BUSY)       # it took a request: every child is busy
        deadline = time.monotonic() + 0.5
        while not made.pool.grow and time.monotonic() < deadline:
            made.loop.runOnce(timeout=deadline - time.monotonic())
        assert made.pool.grow == 1 and made.pool.startDue()
    finally:
        made.close()
        backlog.close()


def test_a_connection_seen_waiting_during_the_pacing_counts_when_it_ends(tmp_path):
    """Seen waiting before StartInterval allowed a start: a start follows at its end
    if every child is still busy, though the connection was taken meanwhile (the
    requests behind it may wait on kept-alive connections, which no listening
    socket shows); none follows if a child is idle by then."""
    for stillBusy in (True, False):
        (tmp_path / str(stillBusy)).mkdir()
        backlog = Backlog(tmp_path / str(stillBusy))
        made = Parts(tmp_path / str(stillBusy), listeners=FakeListeners([backlog.server]))
        try:
            first = made.fork()
            made.setState(first, IDLE)
            made.pool.maintain()
            made.setState(first, BUSY)
            made.pool.lastGrowth = time.monotonic()      # a growth start just now
            growth = made.pool.growth
            made.pool.refresh()
            growth.look()                                # all busy, waiting: not yet
            assert not made.pool.grow
            backlog.close()                              # taken meanwhile
            made.listeners.socks = []
            if not stillBusy:
                made.setState(first, IDLE)
            deadline = time.monotonic() + 1.0
            while (not made.pool.grow and growth.lookTimer is not None
                   and time.monotonic() < deadline):
                made.loop.runOnce(timeout=deadline - time.monotonic())
            assert made.pool.grow == (1 if stillBusy else 0)
        finally:
            made.close()
