"""A stop the manager sends while a child is still on its way to its main loop."""

import signal

from tests.support.procman import Procman
from tests.support.procs import waitFor


def _notes(log):
    try:
        return log.read_text().split('\n')
    except FileNotFoundError:
        return []


def test_a_stop_that_reaches_a_child_before_its_main_loop_is_not_lost(tmp_path, procs):
    """SIGHUP to a child between its fork and its main loop still stops it at once.

    The manager sends SIGHUP to stop a child.  A child that has not pushed its
    main loop's handlers yet takes it in the handler beneath them, which must
    not drop it: the child has served nothing, so SIGHUP's default action ends
    it, instead of a main loop that would serve until StopTimeout sends SIGTERM.
    """
    log = tmp_path / 'startup.log'
    pm = Procman(tmp_path, procs, command='tests.process.hup_apps:slowStart', listen=False,
                 prefork=1, env={'STARTUP_LOG': str(log)})
    with open(pm.path) as f:
        pm.write(f.read().replace('StopTimeout 5', 'StopTimeout 60'))
    pm.start()
    kid = pm.children()[0]
    waitFor(lambda: f"waiting {kid}" in _notes(log), 20, message="the child's startup")
    pm.signal(signal.SIGTERM)
    assert pm.proc.wait(20) == 0, pm.failure()
    assert 'sending SIGTERM' not in pm.log()
    assert f"stopped {kid}" not in _notes(log)      # its main loop never ran
