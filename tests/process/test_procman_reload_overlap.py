"""Reload with overlapping generations: the old children serve while the
new code loads, and retire only once the new ones are ready.  Real processes, an
application whose import takes 2.5 s, clients through nginx and on the socket."""

import os
import pytest
import signal
import sys
import threading
from pathlib import Path

from tests.support.load import ClientLoop, fastcgiGet, urlGet
from tests.support.nginx import Nginx
from tests.support.procman import ROOT, Procman
from tests.process.test_procman_lifecycle import MaxWatcher
from tests.support.procs import childrenOf, pidAlive, waitFor

REQUEST_TIME = 0.02      # what the app spends on each request
SLOW_IMPORT = 2.5

APP_SOURCE = """\
import os
import time

VERSION = {version!r}
time.sleep({importTime})
{extra}

def app(environ, start_response):
    slow = environ.get('QUERY_STRING', '').partition('sleep=')[2]
    if slow:
        open('slow-started', 'w').close()
    time.sleep(float(slow or {requestTime}))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [f"{{VERSION}} pid={{os.getpid()}}\\n".encode()]
"""


def writeApp(directory, version, extra=''):
    (directory / 'slowapp.py').write_text(APP_SOURCE.format(
        version=version, importTime=SLOW_IMPORT, requestTime=REQUEST_TIME, extra=extra))


def slowProcman(tmp_path, procs, extra=''):
    code = tmp_path / 'code'
    code.mkdir()
    writeApp(code, 'v1')
    env = {'PYTHONPATH': os.pathsep.join([str(code), ROOT] + [p for p in sys.path if p]),
           'PYTHONDONTWRITEBYTECODE': '1'}
    pm = Procman(tmp_path, procs, command='CGI slowapp:app', prefork=2,
                 extra="MaxProcesses 3\n" + extra, env=env)
    pm.code = code
    return pm.start(timeout=30)


def zombies(pid):
    found = []
    for child in childrenOf(pid):
        try:
            with open(f'/proc/{child}/stat') as f:
                if f.read().rsplit(')', 1)[1].split()[0] == 'Z':
                    found.append(child)
        except OSError:
            pass
    return found


def managerFds(pid):
    return sorted(os.listdir(f'/proc/{pid}/fd'), key=int)


def waitReloaded(pm, count):
    waitFor(lambda: pm.log().count('reload done') >= count
             and 'previous generation has stopped' in pm.log().split('reload done')[-1], 60,
             message=f"reload {count} done and the previous generation stopped")


def test_sighup_new_code_no_gap(tmp_path, procs):
    pm = slowProcman(tmp_path, procs)
    pidBefore = pm.pid
    with Nginx(tmp_path, fastcgi_pass=f'unix:{pm.socket}') as nginx:
        with ClientLoop(urlGet(nginx.url + '/'), threads=2, seconds=300) as viaNginx, \
                ClientLoop(fastcgiGet(pm), threads=2) as direct:
            waitFor(lambda: direct.count() >= 20 and viaNginx.count() >= 20, 20,
                    message="requests flowing")
            first = set(pm.children())
            writeApp(pm.code, 'v2')
            pm.signal(signal.SIGHUP)
            waitReloaded(pm, 1)
            count = direct.count()
            waitFor(lambda: direct.count() >= count + 20, 20, message="requests after")
    directFailures, nginxFailures = direct.failures(), viaNginx.failures()
    assert directFailures == [] and nginxFailures == [], (directFailures + nginxFailures)[:5]
    worst = max(s.latency for s in direct.answers())
    worstNginx = max(s.latency for s in viaNginx.answers())
    assert worst <= REQUEST_TIME + 0.5, worst
    assert worstNginx <= REQUEST_TIME + 0.5, worstNginx
    now = set(pm.children())
    assert len(now) >= 2 and not now & first
    assert all(not pidAlive(p) for p in first)
    lastBodies = [s.value for s in direct.answers()[-20:] + viaNginx.answers()[-20:]]
    assert all(b.startswith('v2 pid=') for b in lastBodies), lastBodies
    assert {int(b.split('pid=')[1]) for b in lastBodies} <= now
    assert pm.pid == pidBefore and pm.readPid() == pidBefore and pm.proc.returncode is None
    assert 'restarting: exec' in pm.log()
    pm.stop()


def reloadCommand(pm):
    from tests.support.procman import peakArgv
    import subprocess
    return subprocess.run(peakArgv('procman', '--reload', pm.path), env=pm.env,
                          capture_output=True, text=True, timeout=120)


def test_failed_reloads_cost_nothing(tmp_path, procs):
    pm = slowProcman(tmp_path, procs)
    config = Path(pm.path).read_text()
    with ClientLoop(fastcgiGet(pm), threads=2) as direct:
        waitFor(lambda: direct.count() >= 20, 20, message="requests flowing")
        serving = set(pm.children())

        pm.write(config + "MaxProcesses banana\n")             # a config error
        result = reloadCommand(pm)
        assert result.returncode != 0
        assert f"{pm.path}:" in result.stderr and 'MaxProcesses' in result.stderr
        pm.write(config)

        (pm.code / 'slowapp.py').write_text("import no_such_module_here\n")   # import error
        result = reloadCommand(pm)
        assert result.returncode != 0 and 'no_such_module_here' in result.stderr

        writeApp(pm.code, 'v2', extra="raise RuntimeError('preload blew up')")
        result = reloadCommand(pm)
        assert result.returncode != 0 and 'preload blew up' in result.stderr

        # Loads fine in the manager, but every new child dies at once.
        writeApp(pm.code, 'v3', extra="os.register_at_fork(after_in_child=lambda: os._exit(7))")
        result = reloadCommand(pm)
        assert result.returncode != 0, result.stdout
        assert 'die before they are ready' in result.stderr
        assert 'reload failed, the previous generation keeps serving' in pm.log()
        assert serving <= set(pm.children())                   # the old pool kept serving

        writeApp(pm.code, 'v4')                                # a good deploy after all that
        result = reloadCommand(pm)
        assert result.returncode == 0, result.stderr
        waitFor(lambda: not set(pm.children()) & serving, 30, message="old pool retired")
        count = direct.count()
        waitFor(lambda: direct.count() >= count + 10, 20, message="requests after")
    failures = direct.failures()
    assert failures == [], failures[:5]
    assert all(s.value.startswith('v4 ') for s in direct.answers()[-5:])
    assert pm.readPid() == pm.pid and pm.proc.returncode is None
    pm.stop()


def test_config_edited_during_the_check_waits_for_the_next_reload(tmp_path, procs):
    pm = slowProcman(tmp_path, procs)
    config = Path(pm.path).read_text()
    with ClientLoop(fastcgiGet(pm), threads=2) as direct:
        waitFor(lambda: direct.count() >= 20, 20, message="requests flowing")
        serving = set(pm.children())
        writeApp(pm.code, 'v2')
        pm.signal(signal.SIGHUP)
        pm.waitLog('SIGHUP: checking the config')
        pm.write(config + "MaxProcesses banana\n")      # while the check imports the app
        waitReloaded(pm, 1)                              # the checked bytes run
        assert not set(pm.children()) & serving
        count = direct.count()
        waitFor(lambda: direct.count() >= count + 10, 20, message="requests after")
        assert pm.proc.returncode is None and pm.readPid() == pm.pid

        pm.signal(signal.SIGHUP)                         # the edit itself is checked next
        pm.waitLog('restart refused')
        assert 'MaxProcesses' in pm.log().split('restart refused')[-1].splitlines()[0]
        assert pm.children()
    failures = direct.failures()
    assert failures == [], failures[:5]
    assert all(s.value.startswith('v2 ') for s in direct.answers()[-5:])
    pm.write(config)
    pm.stop()


def fdKinds(pid):
    """The manager's descriptors, by what they are (pipe, socket, file path)."""
    kinds = []
    for fd in managerFds(pid):
        try:
            target = os.readlink(f'/proc/{pid}/fd/{fd}')
        except OSError:
            continue
        kinds.append(target.split(':[')[0])
    return sorted(kinds)


# Ten reloads each import the app twice (the check, the new image): 50 s of imports.
@pytest.mark.timeout(240)
def test_ten_reloads_under_load(tmp_path, procs):
    pm = slowProcman(tmp_path, procs)
    watcher = MaxWatcher(pm.pid)
    direct = ClientLoop(fastcgiGet(pm), threads=2).start()
    fds = None
    try:
        waitFor(lambda: direct.count() >= 20, 20, message="requests flowing")
        for n in range(1, 11):
            writeApp(pm.code, f'v{n + 1}')
            pm.signal(signal.SIGHUP)
            waitReloaded(pm, n)
            waitFor(lambda: not zombies(pm.pid), 10, message="no zombie children")
            if fds is None:
                fds = fdKinds(pm.pid)
        assert fdKinds(pm.pid) == fds
        count = direct.count()
        waitFor(lambda: direct.count() >= count + 10, 20, message="requests after")
    finally:
        most = watcher.stop()
        direct.stop()
    failures = direct.failures()
    assert failures == [], failures[:5]
    assert all(s.value.startswith('v11 ') for s in direct.answers()[-5:])
    # MaxProcesses 3 + Prefork 2, and one more: the check process, or the one
    # replacement a stopping child may have.
    assert most <= 3 + 2 + 1, most
    assert pm.log().count('restarting: exec') == 10
    assert pm.readPid() == pm.pid and pm.proc.returncode is None
    pm.stop()


def test_second_sighup_during_a_reload_makes_one_more(tmp_path, procs):
    pm = slowProcman(tmp_path, procs)
    writeApp(pm.code, 'v2')
    pm.signal(signal.SIGHUP)
    pm.waitLog('restarting: exec')
    writeApp(pm.code, 'v3')
    pm.signal(signal.SIGHUP)              # held while the new image loads
    pm.signal(signal.SIGHUP)              # coalesced with the one before
    waitReloaded(pm, 2)
    assert pm.log().count('restarting: exec') == 2
    assert pm.request('/').body.startswith(b'v3 ')
    pm.stop()


def test_sigterm_during_a_reload_stops_both_generations_gracefully(tmp_path, procs):
    pm = slowProcman(tmp_path, procs)
    old = set(pm.children())
    writeApp(pm.code, 'v2')
    pm.signal(signal.SIGHUP)
    pm.waitLog('restarting: exec')         # the new image is loading the new code
    answers = []
    slow = threading.Thread(target=lambda: answers.append(pm.request('/', query='sleep=1.5',
                                                                      timeout=20)))
    slow.start()
    waitFor(lambda: os.path.exists(tmp_path / 'slow-started'), 10,
             message="an old child serving the slow request")
    pm.stop(timeout=30)                    # exit 0, every child gone, the pid file too
    slow.join(20)
    assert answers and answers[0].status == 200 and answers[0].body.startswith(b'v1 ')
    assert all(not pidAlive(p) for p in old)
    assert 'child' in pm.log().split('graceful stop')[-1]


def test_code_broken_after_the_check_keeps_the_old_generation(tmp_path, procs):
    pm = slowProcman(tmp_path, procs)
    flag = tmp_path / 'broken'
    with ClientLoop(fastcgiGet(pm), threads=2) as direct:
        waitFor(lambda: direct.count() >= 20, 20, message="requests flowing")
        writeApp(pm.code, 'v2', extra=f"if os.path.exists({str(flag)!r}):\n"
                                      f"    raise RuntimeError('broken after the check')")
        pm.signal(signal.SIGHUP)
        pm.waitLog('restarting: exec')     # the check passed; the new image loads
        # The pool as it is carried (under load it may have grown since the start).
        serving = set(pm.children())
        flag.touch()
        pm.waitLog('reload failed, the previous generation keeps serving')
        assert 'broken after the check' in pm.log().split('reload failed')[-1].splitlines()[0]
        count = direct.count()
        waitFor(lambda: direct.count() >= count + 20, 20, message="requests after")
        assert set(pm.children()) == serving

        flag.unlink()                      # fixed: the next reload replaces them
        pm.signal(signal.SIGHUP)
        waitReloaded(pm, 1)
        assert not set(pm.children()) & serving
        # The retired children finish what they accepted before they go.
        pm.waitLog('the previous generation has stopped')
        count = direct.count()
        waitFor(lambda: direct.count() >= count + 5, 20, message="requests after the switch")
    failures = direct.failures()
    assert failures == [], failures[:5]
    assert all(s.value.startswith('v2 ') for s in direct.answers()[-5:])
    assert pm.readPid() == pm.pid and pm.proc.returncode is None
    pm.stop()


def test_reload_stop_keeps_the_stop_then_exec_sequence(tmp_path, procs):
    pm = slowProcman(tmp_path, procs, extra="Reload stop")
    old = set(pm.children())
    writeApp(pm.code, 'v2')
    result = reloadCommand(pm)
    assert result.returncode == 0, result.stderr
    pm.waitLog('restarting: exec')      # the verdict came with the check, before the stop
    log = pm.log()
    assert log.index('restart: stopping') < log.index('restarting: exec')
    assert 'previous generation' not in log
    waitFor(lambda: len(pm.children()) == 2 and not set(pm.children()) & old, 30,
             message="the new pool")
    assert pm.request('/').body.startswith(b'v2 ')
    assert pm.readPid() == pm.pid
    pm.stop()


def test_a_bad_reload_value_is_one_line_with_file_and_line(tmp_path, procs):
    from tests.support.procman import peakArgv
    import subprocess
    conf = tmp_path / 'bad.conf'
    conf.write_text("Command CGI tests.procman.apps:hello\nReload sideways\n")
    result = subprocess.run(peakArgv('procman', '--check', str(conf)), capture_output=True,
                            text=True, timeout=60, cwd=str(tmp_path),
                            env={'PYTHONPATH': os.pathsep.join([ROOT] + sys.path)})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"peak: {conf}:2: Reload: expected 'overlap' or 'stop', got 'sideways'"], result.stderr
