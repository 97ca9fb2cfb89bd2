"""Processes the benchmarks start and the /proc figures they read.

Every server runs in its own session; ``Started.stop()`` signals that
session's process group by the leader's pid, waits a bounded time, then
SIGKILLs the group.  Nothing here waits without a deadline.

How this differs from the tests' tests/support/procs.py: ``Started`` is a
benchmark's server, not a test's process.  Its output goes to a log file
for the report; it is stopped the way an operator stops it (SIGTERM, so
its shutdown runs as measured, and SIGKILL only after a deadline); and a
server that misbehaves is a ``BenchError`` the run reports, never an
assertion.  The polling wait and the child listing are the tests' own,
imported from there; ``waitFor`` only makes its timeout a BenchError.
"""

import logging
import os
import signal
import subprocess

from tests.support.procs import childrenOf, waitFor as _waitFor

log = logging.getLogger('bench')

CLOCK_TICKS = os.sysconf('SC_CLK_TCK')


class BenchError(Exception):
    """A benchmark could not run; the message says what to fix."""


def waitFor(condition, timeout, what, interval=0.01):
    """Poll ``condition()`` until it returns a true value, for at most ``timeout`` seconds;
    the tests' waitFor, with a BenchError when the time is up."""
    return _waitFor(condition, timeout, interval, what, error=BenchError)


class Started:
    """A process started in its own session, with its output in ``logpath``."""

    def __init__(self, argv, logpath, env=None, cwd=None):
        self.argv = argv
        self.logpath = logpath
        self._log = open(logpath, 'ab')
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                      start_new_session=True)
        self.pid = self.popen.pid

    @property
    def returncode(self):
        return self.popen.poll()

    def output(self, tail=2000):
        with open(self.logpath, 'rb') as f:
            return f.read().decode(errors='replace')[-tail:]

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Signal the group, wait up to ``timeout``, then SIGKILL whatever is left of it."""
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %g s after %s; killing its group",
                        self.argv[0], timeout, signal.Signals(sig).name)
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            log.error("process %d survived SIGKILL", self.pid)
        self._log.close()


def cpuSeconds(pid):
    """User + system CPU seconds of ``pid`` and its reaped children; 0 when it is gone."""
    try:
        with open(f'/proc/{pid}/stat', 'rb') as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(b')') + 2:].split()
    # utime, stime, cutime, cstime are fields 14-17 (1-based) of the full line
    return sum(int(v) for v in fields[11:15]) / CLOCK_TICKS


def treeCpuSeconds(pid):
    """CPU seconds of ``pid`` and of its current children."""
    return cpuSeconds(pid) + sum(cpuSeconds(k) for k in childrenOf(pid))


def smapsRollup(pid):
    """USS and PSS of ``pid`` in bytes, from /proc/PID/smaps_rollup."""
    values = {}
    with open(f'/proc/{pid}/smaps_rollup') as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == 'kB':
                values[parts[0].rstrip(':')] = int(parts[1]) * 1024
    uss = values.get('Private_Clean', 0) + values.get('Private_Dirty', 0)
    return {'uss': uss, 'pss': values.get('Pss', 0), 'rss': values.get('Rss', 0)}


def contextSwitches(pid):
    """(voluntary, involuntary) context switches of ``pid`` so far."""
    found = {}
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith(('voluntary_ctxt_switches', 'nonvoluntary_ctxt_switches')):
                key, value = line.split(':')
                found[key] = int(value)
    return found['voluntary_ctxt_switches'], found['nonvoluntary_ctxt_switches']
