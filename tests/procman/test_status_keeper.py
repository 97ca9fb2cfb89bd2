"""The status keeper's parts, with real sockets, a real loop and real processes: the server
moving between loops and draining, the new image's takeover, the keeper's view of the pool.
(The keeper through real reloads: tests/process/test_procman_status_reload.py.)"""

import os
import signal
import socket
import sys

import pytest
from zope.interface.verify import verifyClass, verifyObject

from peak_lite.running.procman.loop import ManagerLoop
from peak_lite.running.procman.scoreboard import Scoreboard
from peak_lite.running.procman.slotstatus import SlotStatus
from peak_lite.running.procman.status import (
    IStatusKeeper, IStatusService, KeeperProcess, LastState, StatusService, Tally)
from peak_lite.running.procman.status.keeper import KEEPER_ENV
from peak_lite.running.procman.status.takeover import Takeover
from peak_lite.running.sockets import Listener, Listeners
from tests.procman.test_status_server import Served, _recvUntilClosed, read_answer
from tests.support.procs import pidAlive, waitFor


@pytest.fixture
def served():
    s = Served()
    yield s
    s.close()


def sleeper(procs, **kw):
    """A child of this process that sleeps until signalled."""
    return procs([sys.executable, '-c', 'import time; time.sleep(60)'], **kw)


def test_the_keeper_handle_kills_and_reaps_its_child_once(procs):
    assert verifyClass(IStatusService, StatusService)
    child = sleeper(procs)
    keeper = KeeperProcess(child.pid)
    assert verifyObject(IStatusKeeper, keeper)
    keeper.kill()
    assert not pidAlive(child.pid)
    keeper.kill()          # reaped already: nothing is signalled
    assert child.popen.wait(5) in (0, -signal.SIGKILL)


def test_a_half_read_request_moves_to_another_loop_and_is_answered_there():
    served = Served()
    other = ManagerLoop()
    try:
        c = served.client()
        c.sendall(b'GET /moved HTTP/1.1\r\nHo')
        served.pump(lambda: any(client.inbox for client in served.server.clients.values()))
        served.server.detach()          # the manager's loop ends: nothing is closed
        served.loop = other
        served.server.attach(other)     # the keeper's loop
        c.sendall(b'st: x\r\n\r\n')
        assert read_answer(served, c).endswith(b'/moved\n')
        c.close()
    finally:
        served.close()


def test_pause_leaves_connections_in_the_backlog_until_resume(served):
    served.server.pause()
    c = served.client()
    c.sendall(b'GET /waited HTTP/1.1\r\n\r\n')
    for _ in range(5):
        served.loop.runOnce(0.02)
    assert not served.server.clients
    served.server.resume()
    assert read_answer(served, c).endswith(b'/waited\n')
    c.close()


def test_drain_closes_idle_clients_answers_the_others_and_accepts_no_more(served):
    idle = served.client()
    idle.sendall(b'GET /first HTTP/1.1\r\n\r\n')
    read_answer(served, idle)                        # kept alive, now between requests
    fresh = served.client()                          # connected, its request not sent yet
    served.pump(lambda: len(served.server.clients) == 2)
    served.server.drain()
    assert served.pump(lambda: _recvUntilClosed(idle)) == b'closed'
    fresh.sendall(b'GET /last HTTP/1.1\r\n\r\n')
    data = served.pump(lambda: _recvUntilClosed(fresh))
    assert data.endswith(b'/last\n') and b'Connection: close' in data
    late = served.client()                           # waits for whoever accepts next
    for _ in range(5):
        served.loop.runOnce(0.02)
    assert not served.server.clients
    for c in (idle, fresh, late):
        c.close()


def test_the_new_image_accepts_once_the_keeper_stopped_accepting(served, procs):
    readFd, writeFd = os.pipe()
    keeper = sleeper(procs, pass_fds=(writeFd,))     # its exit closes the write end
    os.close(writeFd)
    environ = {KEEPER_ENV: f'{keeper.pid},{readFd}'}
    takeover = Takeover(environ, served.server, served.loop)
    assert not environ and not served.server.accepting
    c = served.client()
    c.sendall(b'GET /after HTTP/1.1\r\n\r\n')
    # The keeper is told on the loop's first turn; its exit is the pipe's EOF.
    served.pump(lambda: served.server.accepting)
    assert takeover.fd is None
    # Its descriptors close before it turns into a zombie: the pipe's EOF may come first.
    waitFor(lambda: not pidAlive(keeper.pid), message="the keeper to exit")
    assert read_answer(served, c).endswith(b'/after\n')
    c.close()


def test_a_pid_that_is_not_our_child_is_never_signalled():
    got = []
    previous = signal.signal(signal.SIGTERM, lambda *a: got.append('TERM'))
    readFd, writeFd = os.pipe()
    try:
        # No StatusListen any more: the keeper would be told at once; but we are not
        # our own child.  The read end is Takeover's to close.
        Takeover({KEEPER_ENV: f'{os.getpid()},{readFd}'})
        for text in ('junk', '12', ''):
            Takeover({KEEPER_ENV: text})
        assert got == []
    finally:
        signal.signal(signal.SIGTERM, previous)
        os.close(writeFd)


class _Cfg:
    filename = '/etc/app.conf'
    ReloadCheckTimeout = 60.0


class _Child:
    def __init__(self, pid, slot):
        self.pid, self.slot, self.number = pid, slot, 1
        self.stopStage = None


class _Manager:
    def __init__(self, board, children, tally):
        self.pid = os.getpid()
        self.cfg = _Cfg()
        self.board = board
        self.children = children
        self.tally = tally
        self.old = None
        self.listeners = Listeners()


def test_the_keepers_view_counts_each_request_once_and_only_live_children(procs):
    board = Scoreboard(4)
    try:
        dead = sleeper(procs)
        dead.stop()
        me = _Child(os.getpid(), board.allocate(os.getpid(), 1))
        gone = _Child(dead.pid, board.allocate(dead.pid, 2))
        slot = SlotStatus(board, me.slot)
        for _ in range(3):
            with slot.busy():
                slot.responded(200)
        absorbed = Tally()
        for child in (me, gone):
            absorbed.absorb(child, board)    # as an exec does that cannot carry the board
        state = LastState(_Manager(board, {me.pid: me, gone.pid: gone}, absorbed))
        assert state.tally.totals(board, [me.slot])[0] == 3      # not 6
        os.close(board.carryFd())            # as a reload's exec does: the counts stay live
        tally = Tally()
        manager = _Manager(board, {me.pid: me, gone.pid: gone}, tally)
        state = LastState(manager)
        assert list(state.children) == [me.pid]
        assert state.tally.totals(board, [me.slot])[0] == 3
        with slot.busy():
            slot.responded(200)
        assert state.tally.totals(board, [me.slot])[0] == 4
        sock = socket.create_server(('127.0.0.1', 0))
        manager.loop = loop = ManagerLoop()
        service = StatusService(manager, Listener(sock))
        service.detach()
        service.serveFrom(state, loop)                            # as the keeper does
        assert service.notReady() == ''                          # it is idle, alive
        code, _, body = service.respond('GET', '/metrics', {})
        assert code == 200 and b'peak_requests_total 4\n' in body
        service.close()
        loop.close()
    finally:
        board.close()
