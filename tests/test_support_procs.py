"""The test harness's own promise: every process a test starts is stopped and reaped."""

import os
import signal

import pytest

from tests.support.procs import Proc, childrenByScan, childrenOf, pidAlive, stopAll, waitFor


class _WillNotGo:
    """A started thing whose stop fails, as a group that outlives its deadline does."""

    def stop(self):
        raise AssertionError("process group 1234 to be gone")


def test_a_failing_stop_leaves_no_other_process_running_or_unreaped():
    sleeper = Proc(['sleep', '300'])
    with pytest.raises(AssertionError, match="to be gone"):
        stopAll([sleeper, _WillNotGo()])
    assert not pidAlive(sleeper.pid)
    assert sleeper.popen.returncode is not None


def test_children_by_scan_finds_the_live_children_and_not_the_zombies():
    kids = []
    try:
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                signal.pause()
                os._exit(0)
            kids.append(pid)
        os.kill(kids[0], signal.SIGKILL)
        waitFor(lambda: not pidAlive(kids[0]), 10, message="the first child to die")
        mine = set(kids)     # the test run may have children of its own (a database)
        assert set(childrenByScan(os.getpid())) & mine == set(kids[1:])
        assert set(childrenOf(os.getpid())) & mine == set(kids[1:])
    finally:
        for pid in kids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
