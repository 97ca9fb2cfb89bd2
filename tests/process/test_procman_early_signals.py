"""Signals that reach the manager before its loop runs are held, not fatal; startup errors
reach the terminal as well as the StdErr file."""

import signal

from tests.support.procman import Procman
from tests.support.procs import waitFor


def test_hup_and_usr1_during_preload_are_held_then_handled(tmp_path, procs):
    mark = tmp_path / 'preloads'
    pm = Procman(tmp_path, procs, command='CGI tests.procman.apps:SlowPreload',
                 env={'PRELOAD_MARK': str(mark)})
    pm.start(wait=False)
    waitFor(lambda: mark.exists() and mark.read_text().count('\n') == 1, 20,
             message="the first preload to begin")
    pm.signal(signal.SIGUSR1)        # their default action would kill the manager
    pm.signal(signal.SIGHUP)
    # The manager lives on, serves, and then acts on the held HUP: a restart,
    # which preloads a second time (the check) and a third (the new manager).
    waitFor(lambda: mark.read_text().count('\n') >= 3, 30, message="the restart's preloads")
    assert pm.proc.returncode is None, pm.failure()
    pm.waitLog("manager %d started" % pm.pid)
    waitFor(lambda: pm.log().count(f"manager {pm.pid} started") == 2, 30,
             message="the manager to restart in place")
    pm.waitChildren(1)
    assert pm.request('/').status == 200
    pm.stop()


def test_startup_error_reaches_the_terminal_too(tmp_path, procs):
    pm = Procman(tmp_path, procs, command='CGI tests.procman.apps:no_such_app')
    pm.start(wait=False)
    assert pm.proc.wait(30) == 3
    err = pm.proc.popen.stderr.read().decode()
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[0].startswith('procman: ') and 'no_such_app' in lines[0], err
    assert f"(see {pm.stderr})" in lines[0]
    assert 'Traceback' not in err
    assert 'no_such_app' in pm.log()
