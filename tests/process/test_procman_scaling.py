"""procman's adaptive pool under real load: scale up and down, no start-then-kill,
busy children kept, recycling with jitter, hung requests."""

import collections
import os
import re
import signal
import threading
import time

import pytest

from tests.procman.scaling_apps import Sampler, pidGet, pidOf, readBoard, waitState
from tests.support import fcgi_client as fc
from tests.support.load import ClientLoop
from tests.support.procman import Procman
from tests.support.procs import pidAlive, waitFor

APP = 'CGI tests.procman.scaling_apps:app'
START_INTERVAL = 0.05        # what tests.support.procman writes
BOOT = 1.0                   # generous time for a forked child to become ready


def rule(tmp_path, runEvery=30):
    return (f"<BusyStarter>\n  Semaphore {tmp_path / 'scoreboard'}\n  RunEvery {runEvery}\n"
            f"</BusyStarter>")


def manager(tmp_path, procs, extra, prefork=1, runEvery=30):
    return Procman(tmp_path, procs, command=APP, prefork=prefork,
                   extra=extra + '\n' + rule(tmp_path, runEvery))


@pytest.mark.slow
def test_scale_up_to_max_on_pending_connections_then_down_one_at_a_time(tmp_path, procs):
    idle = 2.0
    pm = manager(tmp_path, procs, f"MinProcesses 1\nMaxProcesses 4\nIdleTimeout {idle}")
    pm.start()
    with Sampler(pm) as sampler:
        began = time.monotonic()
        with ClientLoop(pidGet(pm, '/sleep?0.5'), threads=8) as load:
            # RunEvery is 30 s: only the pending-connection path can be this quick.
            deadline = 3 * START_INTERVAL + 3 * BOOT
            waitFor(lambda: len(pm.children()) == 4, deadline,
                     message="the pool to reach MaxProcesses 4")
            reached = time.monotonic() - began
            waitFor(lambda: load.finished() >= 24, 30, message="24 requests served")
            stopped = time.monotonic()
        assert not load.failures()
        waitFor(lambda: len(pm.children()) == 1, idle + 4 * 1.0 + 5,
                 message="the pool back at MinProcesses 1")
        waitFor(lambda: sampler.samples[-1][1] == 1, 5, message="a sample of the last step")
    counts = sampler.counts()
    assert max(counts) == 4, counts
    assert reached < 30 / 10
    assert "a connection is waiting: starting one more" in pm.log()
    # Down one child at a time, none before IdleTimeout after the load stopped.
    after = [(t, n) for t, n in sampler.samples if t > stopped]
    steps = [n for i, (_, n) in enumerate(after) if i == 0 or n != after[i - 1][1]]
    assert steps == [4, 3, 2, 1], steps
    firstDrop = next(t for t, n in after if n < 4)
    assert firstDrop - stopped >= idle - 0.05
    assert len(re.findall(r"idle for .* stopping it", pm.log())) == 3
    waitFor(lambda: set(readBoard(pm.scoreboard)[1]) == set(pm.children()), 5,
             message="the scoreboard to hold just the remaining child")
    pm.stop()


@pytest.mark.slow
def test_no_start_then_kill_a_new_child_serves_before_it_can_be_reaped(tmp_path, procs):
    """SIGTTIN starts a child, SIGTTOU at once puts the pool above the floor.

    The old child is busy and the new one idle, unserved: a naive idle or
    floor check would stop the new one.  It must serve a request and live
    at least IdleTimeout after it became ready, through several reap ticks.
    """
    idle = 3.0
    pm = manager(tmp_path, procs, f"MinProcesses 1\nMaxProcesses 3\nIdleTimeout {idle}")
    pm.start()
    [old] = pm.children()
    slow = threading.Thread(target=lambda: pm.request('/sleep?2.5', timeout=30), daemon=True)
    slow.start()
    waitState(pm, old, 'busy')
    pm.signal(signal.SIGTTIN)
    new = waitFor(lambda: (set(pm.children()) - {old}) or None, 10,
                   message="the child SIGTTIN starts").pop()
    waitState(pm, new, 'idle')
    readyAt = time.monotonic()
    pm.signal(signal.SIGTTOU)
    pm.waitLog("floor 2 -> 1")
    assert pidOf(pm.request('/')) == new
    waitFor(lambda: time.monotonic() - readyAt > idle - 0.2 or not pidAlive(new), idle + 1)
    assert pidAlive(new) and readBoard(pm.scoreboard)[1][new]['state'] != 'stopping'
    slow.join(30)
    assert f"child {new} exited" not in pm.log().split("floor 2 -> 1")[1].split("idle for")[0]
    pm.stop()


@pytest.mark.slow
def test_a_busy_child_is_never_reaped_even_the_oldest(tmp_path, procs):
    pm = manager(tmp_path, procs, "MinProcesses 1\nMaxProcesses 2\nIdleTimeout 1")
    pm.start()
    [oldest] = pm.children()
    answers = []
    slow = threading.Thread(target=lambda: answers.append(pm.request('/sleep?4', timeout=30)),
                            daemon=True)
    slow.start()
    waitState(pm, oldest, 'busy')
    pm.signal(signal.SIGTTIN)
    young = waitFor(lambda: (set(pm.children()) - {oldest}) or None, 10).pop()
    waitState(pm, young, 'idle')
    pm.signal(signal.SIGTTOU)        # above the floor again: one of the two must go
    pm.waitLog(f"child {young} idle for", timeout=10)
    waitFor(lambda: not pidAlive(young), 10, message="the idle child to exit")
    slow.join(30)
    assert [pidOf(a) for a in answers] == [oldest]
    assert pidAlive(oldest)
    assert f"child {oldest} idle for" not in pm.log()
    pm.stop()


def test_sigkill_of_a_busy_child_leaves_the_busy_count_right(tmp_path, procs):
    pm = manager(tmp_path, procs, "MinProcesses 2\nMaxProcesses 2", prefork=2)
    pm.start(children=2)
    threading.Thread(target=lambda: _quietly(pm.request, '/sleep?30', timeout=30),
                     daemon=True).start()
    busy = waitFor(lambda: [p for p, s in readBoard(pm.scoreboard)[1].items()
                             if s['state'] == 'busy'], 10, message="a busy child")
    assert len(busy) == 1
    os.kill(busy[0], signal.SIGKILL)
    waitFor(lambda: busy[0] not in pm.children() and len(pm.children()) == 2, 10)
    slots = waitFor(lambda: (lambda b: b if len(b) == 2 else None)(readBoard(pm.scoreboard)[1]),
                     10, message="two slots")
    assert busy[0] not in slots
    assert [s['state'] for s in slots.values()].count('busy') == 0
    waitFor(lambda: all(s['state'] == 'idle' for s in readBoard(pm.scoreboard)[1].values()),
             10, message="both children idle")
    pm.stop()


@pytest.mark.slow
def test_max_requests_with_jitter_recycles_staggered_and_keeps_the_floor(tmp_path, procs):
    pm = manager(tmp_path, procs, "MinProcesses 3\nMaxProcesses 3\nMaxRequests 20\n"
                                  "MaxRequestsJitter 20", prefork=3)
    pm.start(children=3)
    limits = {p: s['limit'] for p, s in readBoard(pm.scoreboard)[1].items()}
    assert all(20 <= v <= 40 for v in limits.values()), limits
    with Sampler(pm) as sampler:
        with ClientLoop(pidGet(pm, '/'), threads=3) as load:
            waitFor(lambda: pm.log().count("recycled after") >= 8, 60,
                     message="8 recycled children")
        assert not load.failures()
    counts = sampler.counts()
    # Every child that left was asked to: none died and was repaired.
    assert 'unexpectedly' not in pm.log() and 'killed by' not in pm.log(), pm.log()
    assert min(counts) >= 3, (counts, pm.log())
    recycled = [(int(n), int(limit)) for n, limit in
                re.findall(r"recycled after (\d+) requests \(limit (\d+)\)", pm.log())]
    assert len(set(limit for _, limit in recycled)) > 1, recycled
    # Recycled as soon as the limit is reached (the child wakes the manager), not
    # a housekeeping tick later; and a child at its limit takes no new connection.
    assert all(n == limit for n, limit in recycled), recycled
    pm.stop()


@pytest.mark.parametrize('prefork', [1, 2])
def test_a_child_at_its_request_limit_takes_no_new_connection(tmp_path, procs, prefork):
    # Requests one after another, as fast as the children answer: before, a
    # child kept accepting until the manager had started its replacement,
    # and served up to 12 with a limit of 4.  Now it stops accepting as its
    # limit is reached; what comes meanwhile waits in the backlog.
    pm = manager(tmp_path, procs, f"MaxProcesses {prefork}\nMaxRequests 4", prefork=prefork)
    pm.start(children=prefork)
    served = collections.Counter(pidOf(pm.request('/')) for _ in range(40))
    assert max(served.values()) == 4, served
    waitFor(lambda: pm.log().count("recycled after") >= 40 // 4 - prefork, 10,
             message="the children at their limit recycled")
    recycled = re.findall(r"recycled after (\d+) requests \(limit 4\)", pm.log())
    assert set(recycled) == {'4'}, recycled
    pm.stop()


def test_requests_waiting_on_kept_alive_connections_grow_the_pool(tmp_path, procs):
    # A web server that keeps its FastCGI connections alive sends new requests
    # down them, not through the listening socket: while every child is busy
    # they wait in the children's hand-off queue, where the manager did not
    # look, so the pool never grew.  Three kept connections, all opened on
    # the one child, then a 2 s request on each at once.
    pm = manager(tmp_path, procs, "MinProcesses 1\nMaxProcesses 3", prefork=1)
    pm.start(children=1)
    clients = [fc.FastCGIClient(pm.socket, timeout=30) for _ in range(3)]
    assert len({pidOf(c.request(fc.environFor('GET', '/'), keepConn=True))
                for c in clients}) == 1
    answered = []

    def slow(client):
        answered.append(client.request(fc.environFor('GET', '/sleep', query='2'),
                                       keepConn=True).status)
    threads = [threading.Thread(target=slow, args=(c,)) for c in clients]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    pm.waitChildren(3, timeout=1.5)
    for thread in threads:
        thread.join(10)
    assert answered == [200] * 3 and time.monotonic() - started < 3.5, answered
    assert "every child is busy and a connection" in pm.log()
    for client in clients:
        client.close()
    pm.stop()


@pytest.mark.slow
def test_request_timeout_kills_and_replaces_a_hung_child_others_still_served(tmp_path, procs):
    pm = manager(tmp_path, procs, "MinProcesses 2\nMaxProcesses 2\nRequestTimeout 1.5",
                 prefork=2)
    pm.start(children=2)
    started = time.monotonic()
    threading.Thread(target=lambda: _quietly(pm.request, '/hang', timeout=30),
                     daemon=True).start()
    hung = waitFor(lambda: [p for p, s in readBoard(pm.scoreboard)[1].items()
                             if s['state'] == 'busy'], 10, message="the hung child")[0]
    served, broken = 0, []
    while pidAlive(hung):           # the others keep serving (the replacement may too)
        try:
            assert pm.request('/').status == 200
            served += 1
        except (OSError, EOFError) as e:
            broken.append(e)         # a connection the dying child took: at most one
        assert time.monotonic() - started < 1.5 + 1 + 2 + 5, "hung child never killed"
    assert served > 0 and len(broken) <= 1, broken
    line = pm.waitLog(f"child {hung} has been busy on one request for")
    assert line
    age = float(re.search(rf"child {hung} has been busy on one request for ([\d.]+)s",
                          pm.log()).group(1))
    assert 1.5 < age < 4
    waitFor(lambda: len(pm.children()) == 2 and hung not in pm.children(), 10,
             message="the hung child replaced")
    pids = {pidOf(pm.request('/')) for _ in range(10)}
    assert hung not in pids
    pm.stop()


def _quietly(call, *args, **kw):
    """Run a request whose connection the test expects to break."""
    try:
        call(*args, **kw)
    except (OSError, EOFError, ConnectionError):
        pass


def _busy(pm):
    return sum(1 for s in readBoard(pm.scoreboard)[1].values() if s['state'] == 'busy')


@pytest.mark.slow
def test_growth_looks_again_when_start_interval_allows_not_a_second_later(tmp_path, procs):
    """Each connection arrives only once every child is busy and none is waiting, so
    the child that finds every child busy finds no connection pending either.

    The pool must still grow as soon as a connection waits (the first start) and
    then once per StartInterval (the second and third), not at the next of the
    manager's slow looks (once a second while every child stays busy).
    """
    interval = 0.5
    pm = manager(tmp_path, procs, "MinProcesses 1\nMaxProcesses 4\nIdleTimeout 600")
    with open(pm.path) as f:
        pm.write(f.read().replace(f'StartInterval {START_INTERVAL}',
                                  f'StartInterval {interval}'))
    pm.start()
    pm.waitLog("ready: 1 children")
    clients, sent, started = [], {}, {}
    try:
        for n in range(1, 5):
            sent[n] = time.monotonic()
            clients.append(threading.Thread(
                target=lambda: _quietly(pm.request, '/sleep?4', timeout=30), daemon=True))
            clients[-1].start()
            if n > 1:
                pm.waitChildren(n, 5)
                started[n] = time.monotonic()
            waitFor(lambda: _busy(pm) == n, 5, message=f"{n} children busy")
    finally:
        for client in clients:
            client.join(30)
    # The first start follows the waiting connection at once; then one start per
    # StartInterval, never sooner, and not a slow look (a second) later.
    assert started[2] - sent[2] < 0.3, (sent, started)
    for n in (3, 4):
        assert interval - 0.02 < started[n] - started[n - 1] < interval + 0.3, (sent, started)
    assert pm.log().count("started child") == 4, pm.log()
    pm.stop()


@pytest.mark.slow
def test_a_request_right_after_a_busy_child_is_killed_gets_its_repair_not_growth(
        tmp_path, procs):
    """The killed child reads busy until it is reaped, and its 200 MB take the kernel
    a few milliseconds to tear down: a connection arriving meanwhile must not look
    like every child busy with a connection waiting.  One start, the repair."""
    pm = Procman(tmp_path, procs, command='CGI tests.procman.ops_apps:ops', prefork=1,
                 extra="MinProcesses 1\nMaxProcesses 2\nIdleTimeout 600\n"
                       "import tests.procman.ops_big")
    pm.start()
    pm.waitLog("ready: 1 children")
    victim = pm.children()[0]
    threading.Thread(target=lambda: _quietly(pm.request, '/hold',
                                             query=str(tmp_path / 'never'), timeout=30),
                     daemon=True).start()
    waitState(pm, victim, 'busy')
    os.kill(victim, signal.SIGKILL)
    replacement = pidOf(pm.request('/', timeout=30))
    assert replacement != victim
    log = pm.log()
    assert "starting one more" not in log, log
    assert log.count("started child") == 2, log
    assert pm.children() == [replacement]
    pm.stop()
