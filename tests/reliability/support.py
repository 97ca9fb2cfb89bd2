"""Tools the reliability tests share: a load generator, a child killer, /proc probes.

    load = Load(url, clients=8, path='/sleep?0.01').start()
    killer = Killer(pm, every=0.2).start()
    ...                                  # let them run
    killer.stop(); load.stop()
    load.results                         # [(requestId, status or error text), ...]
    zombies(pm.pid), openFds(pm.pid)

Everything here runs in threads of the test process and talks to real
processes over real sockets; nothing is mocked.
"""

import http.client
import itertools
import os
import random
import signal
import threading
import time
import urllib.parse

__all__ = ['Load', 'Killer', 'zombies', 'openFds', 'rawChildren', 'vmRSS']


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


def openFds(pid):
    """Names of the open file descriptors of ``pid`` and what they point at."""
    found = {}
    for fd in os.listdir(f'/proc/{pid}/fd'):
        try:
            found[int(fd)] = os.readlink(f'/proc/{pid}/fd/{fd}')
        except FileNotFoundError:
            continue
    return found


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


class Load:
    """``clients`` threads sending requests through ``url`` until stopped.

    Each request carries a unique id in the query string (``id=N``, after
    ``path``'s own query).  ``results`` lists ``(id, outcome)``: the HTTP
    status as an int, or the text of the connection error.  A client whose
    connection fails opens a new one for its next request.
    """

    def __init__(self, url, clients=8, path='/', method='GET', timeout=30.0):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.clients = clients
        self.path = path
        self.method = method
        self.timeout = timeout
        self.results = []
        self.latencies = []     # seconds per request, in completion order
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []

    def start(self):
        for _ in range(self.clients):
            t = threading.Thread(target=self._client, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout=60.0):
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in self._threads), "load clients did not stop"
        return self.results

    def _target(self, requestId):
        sep = '&' if '?' in self.path else '?'
        return f"{self.path}{sep}id={requestId}"

    def _client(self):
        conn = None
        while not self._stop.is_set():
            with self._lock:
                requestId = next(self._ids)
            if conn is None:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            began = time.monotonic()
            try:
                conn.request(self.method, self._target(requestId),
                             body=b'' if self.method == 'POST' else None)
                resp = conn.getresponse()
                resp.read()
                outcome = resp.status
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                outcome = f"{type(e).__name__}: {e}"
                conn.close()
                conn = None
            with self._lock:
                self.results.append((requestId, outcome))
                self.latencies.append(time.monotonic() - began)
        if conn is not None:
            conn.close()

    def count(self):
        with self._lock:
            return len(self.results)

    def failures(self):
        with self._lock:
            return [(i, o) for i, o in self.results if o != 200]


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
