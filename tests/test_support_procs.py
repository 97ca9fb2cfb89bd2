"""The test harness's own promise: every process a test starts is stopped and reaped."""

import pytest

from tests.support.procs import Proc, pidAlive, stopAll


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
