"""Load generators: wrk for throughput, a small threaded HTTP client for timed scenarios.

``runWrk(url, ...)`` returns requests/s, p50/p99 latency (ms) and error
counts parsed from ``wrk --latency``.  ``Clients`` runs N threads, each
sending requests one after another over a kept-alive connection, and
records (start time, latency, status) for every request; every loop is
bounded by a deadline.
"""

import http.client
import re
import shutil
import subprocess
import threading
import time

from bench.procs import BenchError

_UNITS = {'us': 0.001, 'ms': 1.0, 's': 1000.0, 'm': 60000.0}


def wrkBinary():
    found = shutil.which('wrk')
    if found is None:
        raise BenchError("wrk not found: apt-get install wrk")
    return found


def _ms(text):
    number, unit = re.fullmatch(r'([\d.]+)(us|ms|s|m)', text).groups()
    return float(number) * _UNITS[unit]


def parseWrk(output):
    """The figures of one ``wrk --latency`` run; see the module docstring."""
    rps = re.search(r'Requests/sec:\s+([\d.]+)', output)
    if rps is None:
        raise BenchError(f"could not read wrk's output:\n{output}")
    result = {'rps': float(rps.group(1)), 'errors': 0, 'non2xx': 0}
    for pct, key in (('50', 'p50_ms'), ('99', 'p99_ms')):
        found = re.search(rf'^\s+{pct}(?:\.000)?%\s+(\S+)', output, re.M)
        result[key] = _ms(found.group(1)) if found else None
    total = re.search(r'(\d+) requests in', output)
    result['requests'] = int(total.group(1)) if total else 0
    errors = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)',
                       output)
    if errors:
        result['errors'] = sum(int(v) for v in errors.groups())
    non2xx = re.search(r'Non-2xx or 3xx responses: (\d+)', output)
    if non2xx:
        result['non2xx'] = int(non2xx.group(1))
    return result


def runWrk(url, duration=10, connections=16, threads=2):
    argv = [wrkBinary(), f'-t{threads}', f'-c{connections}', f'-d{duration}s', '--latency',
            '--timeout', '10s', url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return parseWrk(done.stdout)


class Clients:
    """``count`` threads requesting ``path`` until ``stop()`` or ``duration`` seconds pass.

    ``pause`` is the time each client waits between two requests; all stop
    once ``limit`` requests (when given) were answered.
    ``records`` holds (start, latency seconds, status or error text) tuples.
    """

    def __init__(self, port, path, count, duration, pause=0.0, timeout=30.0, limit=None):
        self.port = port
        self.path = path
        self.count = count
        self.duration = duration
        self.pause = pause
        self.timeout = timeout
        self.limit = limit
        self.records = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []

    def start(self):
        self.t0 = time.monotonic()
        self.deadline = self.t0 + self.duration
        for _ in range(self.count):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _run(self):
        conn = None
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            if conn is None:
                conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=self.timeout)
            start = time.monotonic()
            try:
                conn.request('GET', self.path)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                status = type(e).__name__
                conn.close()
                conn = None
            with self._lock:
                self.records.append((start - self.t0, time.monotonic() - start, status))
                if self.limit is not None and len(self.records) >= self.limit:
                    self._stop.set()
            if self.pause:
                self._stop.wait(self.pause)
        if conn is not None:
            conn.close()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)

    def wait(self):
        for t in self._threads:
            t.join(max(0.0, self.deadline - time.monotonic()) + self.timeout + 5)
        return self


def get(port, path, timeout=30.0):
    """One GET through nginx: (status, body text)."""
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        conn.request('GET', path)
        response = conn.getresponse()
        return response.status, response.read().decode(errors='replace')
    finally:
        conn.close()


def percentile(values, pct):
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(pct / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[index]
