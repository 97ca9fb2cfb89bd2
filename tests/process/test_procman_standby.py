"""Standby children (``Standby COUNT``) and the heap in huge pages (``HugePages``),
through real processes: a standby never accepts, a repair or SIGTTIN wakes it
instead of forking, another is forked behind it, and none is left after a
stop or a reload."""

import os
import re
import signal
import subprocess

from tests.procman.scaling_apps import readBoard
from tests.support.procman import Procman, peakArgv
from tests.support.procs import pidAlive, waitFor

APP = 'CGI tests.procman.core_apps:core'
HEAVY = 'CGI bench.heavyapp:app'
HEAVY_ENV = {'BENCH_CACHE_MB': '40', 'BENCH_IMPORT_S': '0'}


def pidOf(response):
    return int(re.search(rb'pid=(\d+)', response.body).group(1))


def states(pm):
    try:
        slots = readBoard(pm.scoreboard)[1]
    except FileNotFoundError:
        return {}       # a reload's new image replaces the file
    return {pid: slot['state'] for pid, slot in slots.items()}


def standbyPids(pm):
    return [pid for pid, state in states(pm).items() if state == 'standby']


def withStandby(tmp_path, procs, extra=''):
    pm = Procman(tmp_path, procs, command=APP, prefork=1,
                 extra=f"MaxProcesses 3\nStandby 1\n{extra}")
    pm.start(children=2)
    [standby] = waitFor(lambda: standbyPids(pm) or None, 10, message="a standby")
    return pm, standby


def test_a_standby_never_accepts_and_a_repair_wakes_it_instead_of_forking(tmp_path, procs):
    pm, standby = withStandby(tmp_path, procs)
    [worker] = [p for p in pm.children() if p != standby]
    assert states(pm)[worker] == 'idle'
    table = subprocess.run(peakArgv('procman', '--status', pm.path), capture_output=True,
                           text=True, env=dict(os.environ, **pm.env), timeout=60)
    assert f"{standby} " in table.stdout and ' standby ' in table.stdout, table.stdout
    assert "1 standby" in table.stdout.splitlines()[-1], table.stdout
    assert {pidOf(pm.request('/')) for _ in range(20)} == {worker}
    os.kill(worker, signal.SIGKILL)
    # The next request is served by the standby, woken: no fork on the way.
    assert pidOf(pm.request('/')) == standby
    assert states(pm)[standby] in ('idle', 'busy')
    # Another standby is forked behind it, and it does not accept either.
    [second] = waitFor(lambda: standbyPids(pm) or None, 10, message="the next standby")
    assert second not in (worker, standby)
    assert {pidOf(pm.request('/')) for _ in range(20)} == {standby}
    log = pm.log()
    assert f"standby child {standby} " in log and "woken" in log
    assert f"child {worker} killed by SIGKILL" in log
    pm.stop()       # asserts every child, the standby included, is gone


def test_sigttin_wakes_the_standby(tmp_path, procs):
    pm, standby = withStandby(tmp_path, procs)
    pm.signal(signal.SIGTTIN)
    waitFor(lambda: states(pm).get(standby) == 'idle', 10, message="the standby woken")
    waitFor(lambda: len(standbyPids(pm)) == 1 and standby not in standbyPids(pm), 10,
            message="another standby")
    assert len(pm.children()) == 3
    pm.stop()


def test_a_standby_that_dies_is_forked_again_and_the_pool_serves_on(tmp_path, procs):
    pm, standby = withStandby(tmp_path, procs)
    os.kill(standby, signal.SIGKILL)
    [again] = waitFor(lambda: [p for p in standbyPids(pm) if p != standby] or None, 10,
                      message="a new standby")
    assert pidAlive(again)
    assert pm.request('/').status == 200
    assert f"standby child {standby} killed by SIGKILL; another is forked in" in pm.log()
    pm.stop()


def test_a_reload_replaces_the_standby_and_leaves_none_behind(tmp_path, procs):
    pm, standby = withStandby(tmp_path, procs)
    pm.signal(signal.SIGHUP)
    waitFor(lambda: not pidAlive(standby), 20, message="the old standby gone")
    [fresh] = waitFor(lambda: [p for p in standbyPids(pm) if p != standby] or None, 20,
                      message="the new generation's standby")
    assert pidAlive(fresh)
    assert pm.request('/').status == 200
    pm.waitChildren(2)      # the previous generation's worker drained: one worker, one standby
    assert fresh in pm.children()
    pm.stop()


def test_standby_needs_a_gateway_command(tmp_path, procs):
    pm = Procman(tmp_path, procs, command='tests.process.hup_apps:slowStart', listen=False,
                 extra="Standby 1")
    pm.start(wait=False)
    assert pm.proc.wait(20) != 0
    err = pm.proc.popen.stderr.read().decode()
    assert f"{pm.path}:" in err and "Standby needs a gateway Command" in err, err
    assert 'Traceback' not in err


def _anonHuge(pid):
    with open(f'/proc/{pid}/smaps_rollup') as f:
        return next(int(line.split()[1]) for line in f if line.startswith('AnonHugePages:'))


def test_the_preloaded_heap_goes_into_huge_pages_and_children_still_share_it(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=HEAVY, prefork=2, env=HEAVY_ENV).start()
    assert _anonHuge(pm.pid) >= 16 * 1024, "kB of the manager's heap in huge pages"
    assert re.search(r"HugePages: \d+ of \d+ well-used 2 MB chunks", pm.log())
    for kid in pm.children():
        with open(f'/proc/{kid}/smaps_rollup') as f:
            rollup = {line.split(':')[0]: int(line.split()[1]) for line in f
                      if line.split(':')[0] in ('Private_Dirty', 'Shared_Dirty')}
        # The 40 MB cache is still shared, not copied into each child.
        assert rollup['Shared_Dirty'] > 30 * 1024 > rollup['Private_Dirty'], rollup
    pm.stop()


def test_hugepages_off_leaves_the_heap_alone(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=HEAVY, prefork=1, env=HEAVY_ENV,
                 extra="HugePages off").start()
    assert _anonHuge(pm.pid) == 0
    assert "HugePages:" not in pm.log()
    pm.stop()
