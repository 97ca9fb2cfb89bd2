"""procman's command-line control: --check, --status (table, JSON), --stop, --reload,
and the Semaphore scoreboard file as outside tools see it."""

import json
import os
import pathlib
import signal
import socket
import stat
import subprocess
import threading

import pytest

from tests.procman.scaling_apps import HEADER, readBoard, waitState
from tests.support.load import ClientLoop, fastcgiGet
from tests.support.procman import Procman, peakArgv
from tests.support.procs import childrenOf, pidAlive, waitFor

APP = 'CGI tests.procman.scaling_apps:app'


def peak(pm, *args, timeout=60):
    env = dict(os.environ, **pm.env)
    return subprocess.run(peakArgv('procman', *args), capture_output=True, text=True,
                          env=env, cwd=str(pm.dir), timeout=timeout)


def test_check_good_config_loads_the_app_without_forking(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP, prefork=2, extra="MaxProcesses 3")
    r = peak(pm, '--check', pm.path)
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout
    assert not os.path.exists(pm.pidfile) and not os.path.exists(pm.scoreboard)


def test_check_bad_configs_exit_2_naming_file_and_line(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP, extra="MinProcesses 5\nMaxProcesses 2")
    r = peak(pm, '--check', pm.path)
    assert r.returncode == 2
    assert r.stderr.count('\n') == 1 and f"{pm.path}:" in r.stderr
    pm = Procman(tmp_path, procs, command='CGI tests.procman.no_such_module:app')
    r = peak(pm, '--check', pm.path)
    assert r.returncode == 3, r.stderr
    assert 'no_such_module' in r.stderr


def test_semaphore_file_mode_and_layout_status_table_and_json(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP, prefork=2, extra="MaxProcesses 3").start()
    assert stat.S_IMODE(os.stat(pm.scoreboard).st_mode) == 0o600
    # The manager records a child's pid in its slot just after the fork: wait for both.
    waitFor(lambda: set(readBoard(pm.scoreboard)[1]) == set(pm.children()), 10,
             message="both children in the scoreboard")
    header, slots = readBoard(pm.scoreboard)
    assert header['magic'] == b'PEAKSB01' and header['version'] == 3
    assert header['slotSize'] == 256 and header['manager'] == pm.pid
    assert os.path.getsize(pm.scoreboard) == HEADER.size + 256 * header['slots']
    assert set(slots) == set(pm.children())
    assert sorted(s['number'] for s in slots.values()) == [1, 2]
    for _ in range(3):
        pm.request('/')
    # A worker marks itself idle just after its response is out: wait for that, so the
    # busy child found below is the one serving the sleep, not a late '/'.
    waitFor(lambda: all(s['state'] == 'idle' for s in readBoard(pm.scoreboard)[1].values()),
             10, message="every child idle")
    # Long enough that two 'peak --status' runs finish well inside it on a loaded machine.
    hold = threading.Thread(target=lambda: pm.request('/sleep?8', timeout=30), daemon=True)
    hold.start()
    busy = waitFor(lambda: [p for p, s in readBoard(pm.scoreboard)[1].items()
                             if s['state'] == 'busy'], 10, message="a busy child")[0]

    table = peak(pm, '--status', pm.path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith(f"manager {pm.pid}")
    assert lines[1].split() == ['PID', 'WORKER', 'STATE', 'REQUESTS', 'REQ', 'AGE', 'RSS', 'MB']
    rows = {int(line.split()[0]): line.split() for line in lines[2:-1]}
    assert set(rows) == set(pm.children())
    assert rows[busy][2] == 'busy' and rows[busy][4].endswith('s')
    assert lines[-1].startswith("total: 2 children (1 busy, 1 idle")

    doc = json.loads(peak(pm, '--status', '--json', pm.path).stdout)
    assert doc['manager'] == pm.pid
    byPid = {c['pid']: c for c in doc['children']}
    assert set(byPid) == set(pm.children())
    assert byPid[busy]['state'] == 'busy' and byPid[busy]['requestAge'] >= 0
    assert all(c['rss'] > 0 for c in doc['children'])
    assert doc['totals']['busy'] == 1 and doc['totals']['children'] == 2
    assert doc['totals']['requests'] >= 3
    hold.join(30)
    pm.stop()
    r = peak(pm, '--status', pm.path)
    assert r.returncode == 1 and 'no manager is running' in r.stderr


def test_semaphore_symlink_is_refused(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP)
    target = tmp_path / 'elsewhere'
    target.write_bytes(b'keep me')
    os.symlink(target, pm.scoreboard)
    for args in (['--check'], []):
        r = peak(pm, *args, pm.path)
        assert r.returncode == 2, r.stderr
        assert r.stderr.count('\n') == 1, r.stderr
        assert f"{pm.path}:" in r.stderr and 'symlink' in r.stderr
    assert target.read_bytes() == b'keep me'
    assert not os.path.exists(pm.pidfile)


def test_stop_waits_for_the_manager_to_exit(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP, prefork=2, extra="MaxProcesses 3").start()
    kids = pm.children()
    r = peak(pm, '--stop', pm.path)
    assert r.returncode == 0, r.stderr
    assert f"manager {pm.pid} stopped" in r.stdout
    assert pm.proc.wait(10) == 0
    assert not any(pidAlive(k) for k in kids) and not os.path.exists(pm.pidfile)
    r = peak(pm, '--stop', pm.path)
    assert r.returncode == 1 and 'no manager is running' in r.stderr


def test_reload_restarts_the_pool_in_the_same_manager(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP, prefork=2, extra="MaxProcesses 3").start()
    old = set(pm.children())
    r = peak(pm, '--reload', pm.path)
    assert r.returncode == 0, r.stderr
    assert f"manager {pm.pid} reloaded" in r.stdout
    waitFor(lambda: len(set(pm.children()) - old) == 2, 30, message="two new children")
    assert pm.readPid() == pm.pid
    waitState(pm, (set(pm.children()) - old).pop(), 'idle')
    assert pm.request('/').status == 200
    pm.stop()


def test_stop_and_reload_signal_only_the_holder_of_the_lock(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP, prefork=1).start()
    decoy = procs(['sleep', '60'])
    with open(pm.pidfile, 'r+') as f:        # in place: the manager's lock stays
        f.truncate(0)
        f.write(f"{decoy.pid}\n")
    for args in (['--stop'], ['--reload']):
        r = peak(pm, *args, pm.path)
        assert r.returncode == 1, r.stdout + r.stderr
        assert str(decoy.pid) in r.stderr and f"held by {pm.pid}" in r.stderr, r.stderr
        assert r.stderr.count('\n') == 1
        assert pidAlive(decoy.pid) and pm.proc.returncode is None
    with open(pm.pidfile, 'r+') as f:        # it removes its pid file only if it names it
        f.truncate(0)
        f.write(f"{pm.pid}\n")
    pm.stop()


def test_reload_of_a_broken_deploy_exits_non_zero_with_the_cause(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP, prefork=1).start()
    kids = pm.children()
    config = pathlib.Path(pm.path).read_text()
    pm.write(config.replace(APP, 'CGI tests.procman.no_such_module:app'))
    r = peak(pm, '--reload', pm.path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'refused' in r.stderr and 'no_such_module' in r.stderr, r.stderr
    assert pm.children() == kids and pm.request('/').status == 200
    pm.write(config)
    r = peak(pm, '--reload', pm.path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"manager {pm.pid} reloaded" in r.stdout
    new = waitFor(lambda: set(pm.children()) - set(kids), 30, message="a new child")
    waitState(pm, new.pop(), 'idle')
    pm.stop()


@pytest.mark.parametrize('kind', ['unix', 'tcp'])
def test_replace_under_steady_load_refuses_no_request(tmp_path, procs, kind):
    mark = tmp_path / 'preloads'
    extra = ''
    if kind == 'tcp':
        with socket.socket() as probe:       # a free port for this test
            probe.bind(('127.0.0.1', 0))
            port = probe.getsockname()[1]
        extra = f"Listen 127.0.0.1:{port}"
    pm = Procman(tmp_path, procs, command='CGI tests.procman.apps:SlowPreload', prefork=2,
                 env=dict(PRELOAD_MARK=str(mark)), listen=(kind == 'unix'), extra=extra)
    if kind == 'tcp':
        pm.socket = ('127.0.0.1', port)
    pm.start()
    old = pm.proc
    with ClientLoop(fastcgiGet(pm), threads=1) as load:
        waitFor(lambda: load.finished() >= 20, 10, message="steady load")
        new = procs(peakArgv('procman', '--replace', pm.path), env=pm.env, cwd=str(pm.dir),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        waitFor(lambda: pm.readPid() == new.pid and len(childrenOf(new.pid)) == 2, 40,
                message="the new manager's children")
        assert old.wait(20) == 0
        count = load.finished()
        waitFor(lambda: load.finished() >= count + 20, 20, message="requests to the new manager")
    assert load.failures() == [] and load.finished() > 40
    assert mark.read_text().count('\n') == 2
    new.signal(signal.SIGTERM)
    assert new.wait(20) == 0
