"""procman's pool through real processes: start, serve, replace a killed child, stop."""

import os
import signal

from tests.support.procman import Procman
from tests.support.procs import waitFor


def test_prefork_serve_replace_and_stop(tmp_path, procs):
    pm = Procman(tmp_path, procs, prefork=3, extra="MinProcesses 1\nMaxProcesses 5").start()
    kids = pm.children()
    assert len(kids) == 3
    r = pm.request('/')
    assert r.status == 200 and int(r.body.split(b'=')[1]) in kids
    victim = kids[0]
    os.kill(victim, signal.SIGKILL)
    waitFor(lambda: victim not in pm.children() and len(pm.children()) == 3, 10,
             message="the killed child to be replaced")
    assert len(pm.children()) == 3
    pm.stop()
