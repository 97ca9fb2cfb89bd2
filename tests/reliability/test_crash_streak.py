"""A child that served requests and is then killed young is no crash: no backoff."""

import os
import signal

from tests.support.procman import Procman
from tests.support.procs import waitFor


def test_young_child_that_served_is_not_a_quick_death(tmp_path, procs):
    """The crash-loop backoff is for children that die before they serve.

    A child killed from outside less than a second after it started, but
    after it served requests, must be replaced at once: counting it as a
    quick death would starve the pool under chaos (kills every 200 ms).
    """
    pm = Procman(tmp_path, procs, command='CGI tests.reliability.apps:sleepy', prefork=1,
                 extra="MinProcesses 1\nMaxProcesses 2").start()
    victim = pm.children()[0]
    for _ in range(3):
        assert pm.request('/').body.startswith(f"pid={victim} ".encode())
    os.kill(victim, signal.SIGKILL)
    waitFor(lambda: f"child {victim} killed by SIGKILL" in pm.log(), 10,
             message="the manager to reap the child")
    line = next(l for l in pm.log().splitlines() if f"child {victim} killed" in l)
    assert "quick deaths" not in line and "unexpectedly" in line, pm.log()
    pm.waitChildren(1)
    pm.stop()
