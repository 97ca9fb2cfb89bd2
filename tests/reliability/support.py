"""Tools the reliability tests share: a child killer and /proc probes.

    killer = Killer(pm, every=0.2).start()
    ...                                  # load from tests.support.load meanwhile
    killer.stop()                        # the pids it killed
    zombies(pm.pid), servesListener(worker)

Everything here runs in threads of the test process and talks to real
processes over real sockets; nothing is mocked.
"""

import os
import random
import signal
import threading
import time

from tests.support.procs import listeningUnixSockets, openFds

__all__ = ['Killer', 'zombies', 'servesListener', 'rawChildren', 'vmRSS']


def rawChildren(pid):
    """Every direct child of ``pid``, zombies included."""
    try:
        with open(f'/proc/{pid}/task/{pid}/children') as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def _state(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def zombies(pid):
    """Children of ``pid`` in state Z: exited but never reaped."""
    return [kid for kid in rawChildren(pid) if _state(kid) == 'Z']


def vmRSS(pid):
    """Resident set size of ``pid`` in kB, or None once it is gone."""
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def _isConfigCheck(pid):
    # The manager's SIGHUP spawns ``procman --check`` as a child: that one is
    # not part of the pool, and killing it would only refuse the restart.
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            return b'\0--check\0' in f.read()
    except (FileNotFoundError, ProcessLookupError):
        return True


class Killer:
    """SIGKILL a random live child of a procman every ``every`` seconds, in a thread."""

    def __init__(self, pm, every=0.2, seed=9):
        self.pm = pm
        self.every = every
        self.random = random.Random(seed)
        self.killed = []
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive(), "the killer thread did not stop"
        return self.killed

    def _run(self):
        deadline = time.monotonic()
        while not self._stop.is_set():
            deadline += self.every
            kids = [k for k in self.pm.children() if not _isConfigCheck(k)]
            if kids:
                victim = self.random.choice(kids)
                try:
                    os.kill(victim, signal.SIGKILL)
                    self.killed.append(victim)
                except ProcessLookupError:
                    pass
            self._stop.wait(max(0.0, deadline - time.monotonic()))


def servesListener(pid):
    """True once the event loop of worker ``pid`` watches its listening socket.

    A worker counts as a live child (idle in its slot) a moment before its
    gateway has built its loop; descriptors counted before this are not the
    ones it keeps.
    """
    listening = listeningUnixSockets()
    fds = openFds(pid)
    wanted = {str(fd) for fd, target in fds.items() if target in listening}
    for fd, target in fds.items():
        if target != 'anon_inode:[eventpoll]':
            continue
        try:
            with open(f'/proc/{pid}/fdinfo/{fd}') as f:
                watched = {line.split()[1] for line in f if line.startswith('tfd:')}
        except FileNotFoundError:
            continue
        if wanted and wanted <= watched:
            return True
    return False
