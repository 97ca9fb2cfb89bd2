"""Closed-loop clients: threads that each send a request, wait for its answer, send the next.

    with ClientLoop(urlGet(nginx.url + '/'), threads=4) as clients:
        waitFor(lambda: clients.count() >= 20, 20, message="requests flowing")
        ...
    clients.failures()          # the values of the requests that failed
    clients.answers()           # Samples of those that succeeded, in completion order

``send(requestId)`` makes one request and returns ``(ok, value)``; ``value``
is what the test looks at (a body, a status, a pid).  An exception it
raises is a failed request whose value is that exception.  Request ids are
unique across the threads and count from 1.  ``urlGet``, ``fastcgiGet`` and
``KeptAliveHttp`` make the senders the tests use.

Use it as a context manager, or call ``stop()`` in a ``finally``: a loop
left running would send for the rest of the session.  Everything runs in
threads of the test process against real servers; nothing is mocked.
"""

import collections
import http.client
import itertools
import threading
import time
import urllib.parse
import urllib.request

__all__ = ['ClientLoop', 'Sample', 'urlGet', 'fastcgiGet', 'KeptAliveHttp']

Sample = collections.namedtuple('Sample', 'id start latency ok value')


class ClientLoop:
    """``threads`` clients calling ``send`` in a loop until ``stop()``.

    Each client also ends after ``limit`` requests or ``seconds`` after
    ``start()``, when given: a backstop, not a way to time a test.  When a
    client ends, it calls ``send.closeThread()`` if ``send`` has one, to drop
    what it kept for that thread.
    """

    def __init__(self, send, threads=4, limit=None, seconds=None):
        self.send = send
        self.threadCount = threads
        self.limit = limit
        self.seconds = seconds
        self._lock = threading.Lock()
        self._samples = []
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._threads = []

    def start(self):
        deadline = None if self.seconds is None else time.monotonic() + self.seconds
        for _ in range(self.threadCount):
            thread = threading.Thread(target=self._client, args=(deadline,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _client(self, deadline):
        try:
            turns = itertools.count() if self.limit is None else range(self.limit)
            for _ in turns:
                if self._stopping.is_set() or (deadline is not None
                                               and time.monotonic() >= deadline):
                    return
                with self._lock:
                    requestId = next(self._ids)
                began = time.monotonic()
                try:
                    ok, value = self.send(requestId)
                except Exception as e:     # kept: the test asserts on failures
                    ok, value = False, e
                sample = Sample(requestId, began, time.monotonic() - began, bool(ok), value)
                with self._lock:
                    self._samples.append(sample)
        finally:
            closeThread = getattr(self.send, 'closeThread', None)
            if closeThread is not None:
                closeThread()

    def stop(self, timeout=60.0):
        """Stop every client and wait for it; return every Sample, in completion order."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), (
            f"load clients still running {timeout:g} s after stop()")
        return self.samples()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def samples(self):
        """Every request so far, in completion order."""
        with self._lock:
            return list(self._samples)

    def answers(self):
        """The Samples of the requests that succeeded, in completion order."""
        return [s for s in self.samples() if s.ok]

    def failures(self):
        """The values of the requests that failed (an exception, an error text, a status)."""
        return [s.value for s in self.samples() if not s.ok]

    def count(self):
        """How many requests have succeeded."""
        with self._lock:
            return sum(1 for s in self._samples if s.ok)

    def finished(self):
        """How many requests are done, successful or not."""
        with self._lock:
            return len(self._samples)

    def served(self, text, recent=200):
        """True once one of the last ``recent`` answers contains ``text``."""
        return any(text in s.value for s in self.answers()[-recent:])


def urlGet(url, timeout=30.0):
    """A sender: GET ``url`` on a new connection (urllib); ok on 200, value the body."""
    def send(requestId):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.status == 200, response.read().decode()
        except OSError as e:       # URLError and HTTPError included
            if hasattr(e, 'close'):
                e.close()          # an HTTPError holds the response open
            return False, repr(e)
    return send


def fastcgiGet(pm, path='/', timeout=30.0):
    """A sender: ``pm.request(path)`` (a FastCGI request on a new connection to a procman's
    socket); ok on 200, value the body."""
    def send(requestId):
        response = pm.request(path, timeout=timeout)
        return response.status == 200, response.body.decode(errors='replace')
    return send


class KeptAliveHttp:
    """A sender: HTTP/1.1 on one kept-alive connection per client thread.

    Each request carries its id in the query string (``id=N``, after
    ``path``'s own query).  Ok on 200; the value is the status, or the text
    of the connection error.  A thread whose connection fails or is closed
    by the server opens a new one for its next request.
    """

    def __init__(self, url, path='/', method='GET', timeout=30.0):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.path = path
        self.method = method
        self.timeout = timeout
        self.local = threading.local()

    def target(self, requestId):
        sep = '&' if '?' in self.path else '?'
        return f"{self.path}{sep}id={requestId}"

    def __call__(self, requestId):
        conn = getattr(self.local, 'conn', None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(
                self.host, self.port, timeout=self.timeout)
        try:
            conn.request(self.method, self.target(requestId),
                         body=b'' if self.method == 'POST' else None)
            response = conn.getresponse()
            response.read()
            if response.will_close:
                self.closeThread()
            return response.status == 200, response.status
        except (OSError, http.client.HTTPException) as e:
            self.closeThread()
            return False, f"{type(e).__name__}: {e}"

    def closeThread(self):
        """Close this thread's connection, if it has one."""
        conn = getattr(self.local, 'conn', None)
        if conn is not None:
            conn.close()
            self.local.conn = None
