"""A stop the manager sends while a child is still on its way to its main loop."""

import signal

from peak_lite.running.procman.scoreboard import readScoreboard
from tests.support.procman import Procman
from tests.support.procs import wait_for


def _notes(log):
    try:
        return log.read_text().split('\n')
    except FileNotFoundError:
        return []


def _slotStates(pm):
    return [slot['state'] for slot in readScoreboard(pm.scoreboard)[1]]


def test_a_stop_that_reaches_a_child_before_its_main_loop_is_not_lost(tmp_path, procs):
    """SIGHUP to a child between its fork and its main loop still stops it gracefully.

    The manager marks the slot stopping, then sends SIGHUP.  A child that has
    not pushed its main loop's handlers yet takes that SIGHUP in the handler
    beneath them, which must not simply drop it: the main loop, once it
    runs, stops at once instead of serving until StopTimeout sends SIGTERM.
    """
    log = tmp_path / 'startup.log'
    pm = Procman(tmp_path, procs, command='tests.process.hup_apps:slowStart', listen=False,
                 prefork=1, env={'STARTUP_LOG': str(log)})
    with open(pm.path) as f:
        pm.write(f.read().replace('StopTimeout 5', 'StopTimeout 60'))
    pm.start()
    kid = pm.children()[0]
    wait_for(lambda: f"waiting {kid}" in _notes(log), 20, message="the child's startup")
    pm.signal(signal.SIGTERM)
    wait_for(lambda: _slotStates(pm) == ['stopping'], 10,
             message="the manager to mark the child stopping")
    wait_for(lambda: 'graceful stop: stopping 1 children' in pm.log(), 10,
             message="the manager's stop")
    (tmp_path / 'startup.log.go').touch()
    wait_for(lambda: f"stopped {kid}" in _notes(log), 20,
             message="the child's main loop to stop on the manager's SIGHUP")
    assert pm.proc.wait(10) == 0, pm.failure()
    assert 'sending SIGTERM' not in pm.log()
