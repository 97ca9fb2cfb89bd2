"""Waiting on conditions, and running real processes that leave nothing behind.

``waitFor`` and ``childrenOf`` are the project's one polling wait and one
child listing: the benchmarks import them too (bench/procs.py).

``Proc`` is a test's process: its output goes to the test, and ``stop()``
SIGKILLs its whole group at once and asserts that nothing of it is left,
because a leftover is a test failure.  A benchmark's server is a different
thing (``bench.procs.Started``): it is stopped the way an operator stops it
and its failures are reported, not asserted.
"""

import os
import signal
import subprocess
import sys
import time

VENV_BIN = os.path.dirname(sys.executable)


def waitFor(condition, timeout=10.0, interval=0.01, message=None, error=AssertionError):
    """Poll ``condition()`` until it returns a true value; return that value.

    Raises ``error`` after ``timeout`` seconds, naming ``message`` or the
    condition: an AssertionError, a test failure, unless the caller is a
    benchmark.  This is the only way tests wait: never a bare sleep.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise error(f"timed out after {timeout:g} s waiting for {message or condition!r}")
        time.sleep(interval)


def pidAlive(pid):
    """True if ``pid`` exists and is not a zombie."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            state = f.read().rsplit(')', 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ('Z', 'X')


def openFds(pid):
    """{descriptor: what it names (a path, 'socket:[INODE]', ...)} of ``pid``; a
    descriptor closed between the listing and its reading is left out."""
    found = {}
    for fd in os.listdir(f'/proc/{pid}/fd'):
        try:
            found[int(fd)] = os.readlink(f'/proc/{pid}/fd/{fd}')
        except OSError:
            pass
    return found


def _unixSockets():
    """(flags, state, 'socket:[INODE]', path) of every unix socket on this machine."""
    with open('/proc/net/unix') as f:
        for fields in (line.split() for line in f):
            if len(fields) > 6 and fields[3].isalnum() and fields[3] != 'Flags':
                yield (int(fields[3], 16), fields[5], f'socket:[{fields[6]}]',
                       fields[7] if len(fields) > 7 else '')


def listeningUnixSockets():
    """Every listening unix socket on this machine, as 'socket:[INODE]' (/proc/net/unix)."""
    return {inode for flags, state, inode, path in _unixSockets() if flags & 0x10000}


def acceptedUnixConnections(pid):
    """The connections ``pid`` holds that were accepted on a unix socket it listens on,
    as 'socket:[INODE]': the accepting side carries the listener's bound path (as it
    was bound) and is connected (state 03)."""
    held = set(openFds(pid).values())
    sockets = [s for s in _unixSockets() if s[3]]
    paths = {path for flags, state, inode, path in sockets if flags & 0x10000 and inode in held}
    return {inode for flags, state, inode, path in sockets
            if path in paths and state == '03' and inode in held}


def _liveProcesses():
    """(pid, the fields of /proc/PID/stat after the name) of every live (non-zombie) process.

    /proc's listing goes by pid number, so a process that lives through the
    scan is always in it.
    """
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open(f'/proc/{name}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] not in ('Z', 'X'):
            yield int(name), fields


def groupPids(pgid):
    """Pids of live (non-zombie) processes whose process group is ``pgid``."""
    return [pid for pid, fields in _liveProcesses() if int(fields[2]) == pgid]


def childrenOf(pid):
    """Pids of the live direct children of ``pid``, whichever of its threads forked them."""
    try:
        tasks = os.listdir(f'/proc/{pid}/task')
    except FileNotFoundError:
        return []
    kids = []
    for task in tasks:
        try:
            with open(f'/proc/{pid}/task/{task}/children') as f:
                kids.extend(int(p) for p in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return [kid for kid in kids if pidAlive(kid)]


def childrenByScan(pid):
    """Like childrenOf, but by reading every process's parent: slower, and exact.

    The kernel's ``children`` lists may skip a live child when another one is
    reaped while they are read ("never promised to be accurate", says its
    source); a scan of /proc does not (see _liveProcesses).
    """
    return [kid for kid, fields in _liveProcesses() if int(fields[1]) == pid]


class Proc:
    """A process started in its own session (so its own process group).

    ``stop()`` kills the whole group and asserts that nothing of it is left.
    Use it as a context manager or through the ``procs`` fixture.
    """

    def __init__(self, argv, env=None, cwd=None, stdin=subprocess.DEVNULL,
                 stdout=None, stderr=None, pass_fds=()):
        self.argv = list(argv)
        full_env = dict(os.environ)
        full_env['PATH'] = VENV_BIN + os.pathsep + full_env.get('PATH', '')
        full_env.pop('PEAK_CONFIG', None)
        # Children import what this interpreter imports, however it was set up
        # (a virtualenv, or a buildout script that puts eggs on sys.path).
        full_env['PYTHONPATH'] = os.pathsep.join(p for p in sys.path if p)
        if env:
            full_env.update(env)
        self.popen = subprocess.Popen(
            self.argv, env=full_env, cwd=cwd, stdin=stdin, stdout=stdout,
            stderr=stderr, pass_fds=pass_fds, start_new_session=True)
        self.pid = self.popen.pid
        self.pgid = self.pid

    def wait(self, timeout=10.0):
        return self.popen.wait(timeout)

    @property
    def returncode(self):
        return self.popen.poll()

    def signal(self, signum):
        os.kill(self.pid, signum)

    def stop(self, timeout=10.0):
        """Kill the process group and assert every member is gone."""
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()
        waitFor(lambda: not groupPids(self.pgid), timeout,
                 message=f"process group {self.pgid} ({self.argv[:3]}) to be gone")
        # The leader is gone or a zombie now, however long it took: reap it, or
        # its Popen warns that it is still running when it is collected.
        self.popen.wait(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def stopAll(started):
    """Stop every Proc of ``started``, last first; then raise the first failure, if any.

    One group that will not go must not leave the others running, their
    Popens dropped unwaited.
    """
    failure = None
    for proc in reversed(started):
        try:
            proc.stop()
        except Exception as e:
            failure = failure or e
    if failure is not None:
        raise failure
