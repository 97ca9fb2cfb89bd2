"""The manager's core through real processes: where a child starts, signals at
every stage, pacing that never delays a repair, an idle manager that sleeps,
fork failure under a real pids cgroup, nothing left after a stop, and the
MaxProcesses bound."""

import contextlib
import os
import re
import signal
import socket
import threading
import time

import pytest

from tests.procman.scaling_apps import Sampler, pidGet, readBoard
from tests.support.fcgi_client import FastCGIClient, environFor
from tests.support.load import ClientLoop
from tests.support.procman import Procman
from tests.support.procs import acceptedUnixConnections, pidAlive, waitFor

APP = 'CGI tests.procman.core_apps:core'
CGROUP_V1 = '/sys/fs/cgroup/pids'


def body(response):
    return response.body.decode() if isinstance(response.body, bytes) else response.body


def pidOf(response):
    return int(re.search(r'pid=(\d+)', body(response)).group(1))


def slowStarts(pm, interval=30):
    """Make StartInterval far longer than any wait of the test."""
    with open(pm.path) as f:
        text = f.read()
    pm.write(text.replace('StartInterval 0.05', f'StartInterval {interval}'))


def test_a_child_starts_from_a_clean_point_off_the_managers_stack(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP).start()
    stack = body(pm.request('/stack'))
    # The worker's own main loop is on its stack; nothing of the manager's is.
    assert 'procman/manager.py' not in stack, stack
    pm.stop()


def test_killed_worker_and_sigttin_start_at_once_whatever_start_interval(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP, extra="MaxProcesses 3")
    slowStarts(pm)
    pm.start()
    [first] = pm.children()
    os.kill(first, signal.SIGKILL)      # killed right after it started
    [second] = waitFor(lambda: [p for p in pm.children() if p != first], 10,
                        message="the replacement")
    assert pm.request('/').status == 200
    # Once it has served, its death is a repair, not a crash streak: at once again.
    waitFor(lambda: readBoard(pm.scoreboard)[1].get(second, {}).get('requests'), 10,
             message="the replacement's request counted")
    os.kill(second, signal.SIGKILL)
    waitFor(lambda: pm.children() and second not in pm.children(), 10,
             message="the second replacement")
    pm.signal(signal.SIGTTIN)           # raising the floor starts its worker at once
    pm.waitChildren(2, timeout=10)
    pm.stop()


def test_an_idle_manager_sleeps(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP, extra="IdleTimeout 60").start()
    pm.waitLog("ready:")

    def switches():
        with open(f'/proc/{pm.pid}/status') as f:
            return sum(int(line.split()[1]) for line in f
                       if line.startswith(('voluntary_ctxt', 'nonvoluntary_ctxt')))
    before, began = switches(), time.monotonic()
    waitFor(lambda: time.monotonic() - began >= 6, 7, interval=0.2)
    woke = switches() - before
    assert woke <= 2, f"the idle manager woke {woke} times in 6 s"
    pm.stop()


def test_restart_survives_a_storm_of_usr1_and_hup(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP).start()
    pm.signal(signal.SIGHUP)
    for i in range(12):
        time.sleep(0.025)               # the storm's pacing, not a wait for a condition
        pm.signal(signal.SIGUSR1 if i % 2 == 0 else signal.SIGHUP)
    waitFor(lambda: f"manager {pm.pid} restarting" in pm.log()
             or pm.proc.returncode is not None, 30, message="the restart")
    waitFor(lambda: pm.log().count(f"manager {pm.pid} started") >= 2
             or pm.proc.returncode is not None, 30, message="the new manager")
    assert pm.proc.returncode is None, pm.failure()
    pm.waitChildren(1)
    waitFor(lambda: pm.request('/').status == 200, 10)
    # Every HUP after the first was coalesced: at most one follow-up reload.
    waitFor(lambda: "ready:" in pm.log().rsplit(f"manager {pm.pid} started", 1)[1], 30,
             message="the pool ready after the last restart")
    assert pm.log().count("checking the config") <= 3, pm.log()
    assert pm.proc.returncode is None, pm.failure()
    pm.stop()


def test_sigusr2_is_logged_and_ignored(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP).start()
    kids = pm.children()
    pm.signal(signal.SIGUSR2)
    pm.waitLog("SIGUSR2")
    assert pm.proc.returncode is None, pm.failure()
    assert pm.children() == kids and pm.request('/').status == 200
    pm.stop()


def _slowCheck(tmp_path, procs, extra=''):
    mark, flag = tmp_path / 'preloads', tmp_path / 'slow'
    pm = Procman(tmp_path, procs, command='CGI tests.procman.core_apps:SlowWhenFlagged',
                 extra=extra, env={'PRELOAD_MARK': str(mark), 'SLOW_FLAG': str(flag)})
    pm.start()
    flag.write_text('')
    return pm, mark, flag


def _checkPid(pm):
    found = re.findall(r"before restarting \(pid (\d+)\)", pm.log())
    return int(found[-1]) if found else None


def test_hup_during_a_reload_check_is_coalesced_into_one_follow_up(tmp_path, procs):
    pm, mark, flag = _slowCheck(tmp_path, procs)
    pm.signal(signal.SIGHUP)
    first = waitFor(lambda: _checkPid(pm), 10, message="the first check")
    waitFor(lambda: mark.read_text().count('\n') == 2, 20, message="the check preloading")
    for n in range(1, 4):
        pm.signal(signal.SIGHUP)
        waitFor(lambda: pm.log().count("reload check is running") == n, 10,
                 message="each HUP during the check logged")
    flag.unlink()
    os.kill(first, signal.SIGKILL)      # the first check fails: the follow-up still runs
    waitFor(lambda: _checkPid(pm) not in (None, first), 20, message="one follow-up check")
    waitFor(lambda: pm.log().count(f"manager {pm.pid} started") == 2, 30,
             message="the restart after the follow-up check")
    assert pm.log().count("before restarting (pid") == 2, pm.log()
    pm.waitChildren(1)
    pm.stop()


def test_a_reload_check_past_its_deadline_is_killed_and_the_restart_refused(tmp_path, procs):
    pm, mark, flag = _slowCheck(tmp_path, procs, extra="ReloadCheckTimeout 1")
    kids = pm.children()
    pm.signal(signal.SIGHUP)
    check = waitFor(lambda: _checkPid(pm), 10, message="the check")
    pm.waitLog("restart refused", timeout=20)
    assert "ReloadCheckTimeout" in pm.log()
    waitFor(lambda: not pidAlive(check), 10, message="the check killed")
    assert pm.children() == kids and pm.request('/').status == 200
    pm.stop()


def test_stopping_the_manager_kills_a_running_check(tmp_path, procs):
    pm, mark, flag = _slowCheck(tmp_path, procs)
    pm.signal(signal.SIGHUP)
    check = waitFor(lambda: _checkPid(pm), 10, message="the check")
    pm.stop()
    waitFor(lambda: not pidAlive(check), 10, message="the check killed with the manager")


def _cgroupV1():
    if not os.path.isdir(CGROUP_V1) or os.geteuid() != 0:
        pytest.skip("needs root and the cgroup v1 pids controller")


def test_fork_failure_frees_its_slot_backs_off_and_the_pool_recovers(tmp_path, procs):
    _cgroupV1()
    pm = Procman(tmp_path, procs, command=APP, prefork=2,
                 extra="MinProcesses 2\nMaxProcesses 2").start(children=2)
    with forksBlocked(pm) as unblock:
        for victim in pm.children():
            os.kill(victim, signal.SIGKILL)
        pm.waitLog("fork failed", timeout=10)
        began = time.monotonic()
        waitFor(lambda: time.monotonic() - began > 1.5, 2, interval=0.1)
        assert pm.log().count("fork failed") == 1, pm.log()     # once per streak
        assert "scoreboard full" not in pm.log()
        unblock()
        pm.waitChildren(2, timeout=30)
        assert pm.request('/').status == 200
        pm.stop()


def test_a_child_at_its_request_limit_serves_on_while_no_replacement_can_start(tmp_path,
                                                                               procs):
    # At its limit a child takes no new connection while its replacement
    # starts; but when no fork succeeds, it must not leave the pool empty.
    _cgroupV1()
    pm = Procman(tmp_path, procs, command=APP, prefork=1,
                 extra="MinProcesses 1\nMaxProcesses 1\nMaxRequests 3").start(children=1)
    child = pm.children()[0]
    with forksBlocked(pm):
        answered = [pm.request('/', timeout=10).status for _ in range(6)]
        assert answered == [200] * 6
        assert "fork failed" in pm.log() and pm.children() == [child]
        pm.stop()


@contextlib.contextmanager
def forksBlocked(pm):
    """No fork of the manager succeeds inside (a cgroup's pids.max); yields ``unblock()``."""
    cg = os.path.join(CGROUP_V1, f'peak-test-{os.getpid()}-{pm.pid}')
    os.mkdir(cg)
    try:
        with open(os.path.join(cg, 'cgroup.procs'), 'w') as f:
            f.write(str(pm.pid))
        with open(os.path.join(cg, 'pids.current')) as f:
            current = int(f.read())
        with open(os.path.join(cg, 'pids.max'), 'w') as f:
            f.write(str(current))

        def unblock():
            with open(os.path.join(cg, 'pids.max'), 'w') as f:
                f.write('max')
        yield unblock
    finally:
        with open(os.path.join(cg, 'cgroup.procs')) as f:
            left = f.read().split()
        for pid in left:
            try:
                with open(os.path.join(CGROUP_V1, 'cgroup.procs'), 'w') as f:
                    f.write(pid)
            except OSError:
                pass
        waitFor(lambda: _rmdir(cg), 10, message=f"removing {cg}")


def _rmdir(path):
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def _freePort():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_a_grandchild_holding_the_listener_does_not_outlive_a_stop(tmp_path, procs):
    port = _freePort()
    pm = Procman(tmp_path, procs, command=APP, listen=False, extra=f"Listen 127.0.0.1:{port}")
    pm.start()
    with FastCGIClient(('127.0.0.1', port), timeout=10) as c:
        grandchild = int(re.search(r'grandchild=(\d+)', body(
            c.request(environFor('GET', '/spawn'), body=b''))).group(1))
    assert pidAlive(grandchild)
    pm.stop()
    waitFor(lambda: not pidAlive(grandchild), 10, message="the grandchild gone")
    with socket.socket() as s:          # the address binds again at once
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('127.0.0.1', port))
        s.listen()


@pytest.mark.slow
def test_children_never_exceed_the_documented_bound_while_some_stop(tmp_path, procs):
    maxProcesses = 2
    pm = Procman(tmp_path, procs, command='CGI tests.procman.scaling_apps:app', prefork=2,
                 extra=f"MinProcesses 2\nMaxProcesses {maxProcesses}\nMaxRequests 3\n"
                       f"RequestTimeout 1")
    pm.start(children=2)
    with Sampler(pm) as sampler:
        # Every child recycles after 3 requests.
        with ClientLoop(pidGet(pm, '/'), threads=3) as load:
            waitFor(lambda: pm.log().count("recycled after") >= 6, 60,
                     message="6 recycled children")
        assert max(sampler.counts()) <= maxProcesses + 1, sampler.counts()
        waitFor(lambda: [s['state'] for s in readBoard(pm.scoreboard)[1].values()]
                 == ['idle', 'idle'], 10, message="two idle children")
        threading.Thread(target=lambda: _quietly(pm.request, '/hang', timeout=30),
                         daemon=True).start()
        # Recycling goes on beside the hung child.
        with ClientLoop(pidGet(pm, '/'), threads=2) as load:
            pm.waitLog("busy on one request for", timeout=20)
            recycled = pm.log().count("recycled after")
            waitFor(lambda: pm.log().count("recycled after") >= recycled + 4, 60,
                     message="4 more recycled children")
        assert not [e for e in load.failures() if not isinstance(e, (OSError, EOFError))]
    counts = sampler.counts()
    # MaxProcesses, plus the one replacement documented in docs/procman.md.
    assert max(counts) <= maxProcesses + 1, counts
    pm.stop()


def _quietly(call, *args, **kw):
    try:
        call(*args, **kw)
    except (OSError, EOFError, ConnectionError):
        pass


def test_a_draining_child_ignores_further_hups(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP)
    with open(pm.path) as f:
        text = f.read()
    pm.write(text.replace('StopTimeout 5', 'StopTimeout 20'))
    pm.start()
    [kid] = pm.children()
    slow = threading.Thread(target=lambda: _quietly(pm.request, '/sleep', query='0.5'),
                            daemon=True)
    slow.start()
    waitFor(lambda: readBoard(pm.scoreboard)[1].get(kid, {}).get('state') == 'busy', 10,
             message="the child busy")
    pm.signal(signal.SIGTERM)           # the manager sends the child SIGHUP: it drains
    waitFor(lambda: readBoard(pm.scoreboard)[1].get(kid, {}).get('state') == 'stopping', 10,
             message="the child asked to stop")
    while pidAlive(kid):               # HUP after HUP, through its whole way out
        try:
            os.kill(kid, signal.SIGHUP)
        except ProcessLookupError:
            break
        time.sleep(0.002)
    assert pm.proc.wait(20) == 0, pm.failure()
    assert f"child {kid} exited with status 0 (stop)" in pm.log(), pm.log()


def test_a_draining_child_waits_for_the_request_of_a_connection_it_just_accepted(
        tmp_path, procs):
    # A client connects, the child accepts, and the child is told to stop before
    # the request's first byte arrives (a loaded machine, a slow network): that
    # request is on its way, not an idle kept-alive link, and must be served.
    pm = Procman(tmp_path, procs, command=APP, prefork=1)
    pm.start()
    [kid] = pm.children()
    with FastCGIClient(pm.socket) as client:
        # The connection itself, not a count of the child's sockets: a child opens
        # sockets of its own for a few ms after it is forked.
        waitFor(lambda: acceptedUnixConnections(kid), 10,
                message="the child to accept")
        os.kill(kid, signal.SIGHUP)      # a graceful stop: it drains what it holds
        time.sleep(0.5)                  # the request comes late: that is the test
        response = client.request(environFor('GET', '/'))
    assert response.status == 200
    assert f"pid={kid}\n" in response.body.decode(), "not served by the child that accepted"
    pm.stop()
