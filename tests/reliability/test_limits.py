"""Resource limits: oversized FastCGI params, a huge body, 1,000 idle connections, slow clients.

In each case the pool keeps serving, memory stays bounded and the log says
what happened in one clear line.
"""

import resource
import select
import socket
import struct
import threading

import pytest

from tests.procman.scaling_apps import readBoard
from tests.reliability.support import servesListener, zombies
from tests.support import fcgi_client as fc
from tests.support.procman import Procman
from tests.support.procs import openFds, waitFor

MB = 1024 * 1024


def _measure(pm, body=b''):
    r = pm.request('/', method='POST', body=body, timeout=120)
    assert r.status == 200, r.body
    return dict(pair.split('=') for pair in r.body.decode().split())


def test_oversized_fastcgi_params(tmp_path, procs):
    pm = Procman(tmp_path, procs, command='CGI tests.reliability.apps:sleepy', prefork=1).start()
    worker = pm.children()[0]
    with fc.FastCGIClient(pm.socket) as c:
        c.beginRequest(1)
        params = fc.nameValues({'HTTP_X_BIG': 'x' * (300 * 1024)})
        try:
            c.sendRaw(b''.join(fc.record(fc.PARAMS, 1, params[i:i + 65535])
                               for i in range(0, len(params), 65535)))
        except (BrokenPipeError, ConnectionResetError):
            pass    # the worker may close before it has read everything
        assert c.isClosed()
    pm.waitLog("FastCGI parameters of request 1 exceed 262144 bytes")
    line = next(l for l in pm.log().splitlines() if 'exceed 262144' in l)
    assert 'maxParamsSize' in line          # names the remedy
    # The same worker goes on serving.
    assert pm.request('/').body.startswith(f"pid={worker} ".encode())
    assert pm.children() == [worker]
    pm.stop()


@pytest.mark.slow
@pytest.mark.parametrize('gateway', ['CGI', 'HTTP'])
def test_huge_body_keeps_worker_memory_bounded(tmp_path, procs, gateway):
    """A 50 MB body spools to disk: the worker's peak RSS grows by far less than 50 MB."""
    pm = Procman(tmp_path, procs, command=f'{gateway} tests.reliability.apps:measure',
                 prefork=1).start()
    body = b'0123456789abcdef' * (50 * MB // 16)
    if gateway == 'CGI':
        before = _measure(pm)
        after = _measure(pm, body)
    else:
        before = _httpMeasure(pm.socket, b'')
        after = _httpMeasure(pm.socket, body)
    assert int(after['size']) == len(body)
    grown = int(after['hwm']) - int(before['hwm'])
    print(f"\n{gateway}: peak RSS grew {grown} kB for 50 MB")
    assert grown < 16 * 1024, f"peak RSS grew by {grown} kB for a 50 MB body: {before} {after}"
    pm.stop()


def _httpMeasure(path, body):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(120)
        s.connect(path)
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        view = memoryview(body)
        for i in range(0, len(body), MB):
            s.sendall(view[i:i + MB])
        data = b''
        while chunk := s.recv(65536):
            data += chunk
    head, _, text = data.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 200'), data[:500]
    return dict(pair.split('=') for pair in text.decode().split())


@pytest.fixture
def manyFds():
    """Raise this process's soft RLIMIT_NOFILE (children inherit it) for the test."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192)
    if want < 2200:
        pytest.fail(f"RLIMIT_NOFILE hard limit {hard} is too low for 1,000 connections; "
                    "raise it (ulimit -Hn) to at least 2200")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.slow
def test_thousand_idle_connections(tmp_path, procs, manyFds):
    """1,000 connections that never send a byte cost the pool nothing it cannot give back."""
    pm = Procman(tmp_path, procs, command='CGI tests.reliability.apps:sleepy', prefork=2,
                 extra="MinProcesses 2\nMaxProcesses 4").start()
    workers = pm.children()
    # Identical workers hold the same descriptors once they have set up.
    waitFor(lambda: all(servesListener(w) for w in workers), 10,
            message="the workers to watch the listening socket")
    fdsBefore = waitFor(lambda: (lambda n: n if len(set(n.values())) == 1 else None)(
        {w: len(openFds(w)) for w in workers}), 10, message="the workers to set up")
    idle = []
    try:
        for _ in range(1000):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(10)
            s.connect(pm.socket)
            idle.append(s)
        for _ in range(20):
            assert pm.request('/', timeout=10).status == 200
        assert pm.proc.returncode is None
        held = sum(len(openFds(w)) - fdsBefore[w] for w in workers if w in pm.children())
        print(f"\n1000 idle connections: the workers hold {held} of them")
    finally:
        for s in idle:
            s.close()
    # Every connection the workers held is given back.
    for w in workers:
        waitFor(lambda: len(openFds(w)) == fdsBefore[w], 20,
                 message=f"worker {w} to close the idle connections")
    assert pm.children() == workers and not zombies(pm.pid)
    pm.stop()


class SlowClient(threading.Thread):
    """Begins a FastCGI request at once, then trickles its params one byte every ``every`` s."""

    def __init__(self, path, every):
        super().__init__(daemon=True)
        self.path = path
        self.every = every
        self.stop = threading.Event()
        self.sent = 0
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)

    def run(self):
        env = fc.nameValues(fc.environFor('GET', '/', query='ms=0'))
        data = fc.stream(fc.PARAMS, 1, env) + fc.record(fc.STDIN, 1)
        try:
            self.sock.sendall(
                fc.record(fc.BEGIN_REQUEST, 1, struct.pack('!HB5x', fc.RESPONDER, 0)))
            for i in range(len(data)):
                if self.stop.wait(self.every):
                    return
                self.sock.sendall(data[i:i + 1])
                self.sent += 1
        except OSError:
            return

    def finish(self):
        self.stop.set()
        self.join(10)
        self.sock.close()


@pytest.mark.slow
def test_slow_clients_do_not_stop_the_pool(tmp_path, procs):
    """Slowloris: clients that trickle a request hold no worker while they trickle.

    A FastCGI worker parses records as they arrive and serves a request only
    once all of it is in, so three clients sending one byte every 0.5 s
    (each read well inside --read-timeout) cost the two workers nothing:
    other clients are served at once, by the children already there, and the
    slow clients are not cut off while they still send.
    """
    pm = Procman(tmp_path, procs, prefork=2,
                 command='CGI --read-timeout 2 tests.reliability.apps:sleepy',
                 extra="MinProcesses 2\nMaxProcesses 5").start()
    slow = [SlowClient(pm.socket, every=0.5) for _ in range(3)]
    for c in slow:
        c.start()
    try:
        waitFor(lambda: all(c.sent >= 2 for c in slow), 10, message="slow clients going")
        for _ in range(10):
            r = pm.request('/', timeout=8)
            assert r.status == 200
        assert all(c.is_alive() for c in slow), "a slow client was cut off while it still sent"
        before = [c.sent for c in slow]
        waitFor(lambda: all(c.sent > b for c, b in zip(slow, before)), 10,
                 message="the slow clients to keep sending")
        assert all(c.is_alive() for c in slow)
    finally:
        for c in slow:
            c.finish()
    assert pm.proc.returncode is None and not zombies(pm.pid)
    pm.stop()


def test_quiet_client_is_dropped_after_the_read_timeout(tmp_path, procs):
    """A client that stops sending mid-request is dropped after --read-timeout, in one line."""
    pm = Procman(tmp_path, procs, prefork=1,
                 command='CGI --read-timeout 1 tests.reliability.apps:sleepy').start()
    worker = pm.children()[0]
    with socket.socket(socket.AF_UNIX) as quiet:
        quiet.settimeout(10)
        quiet.connect(pm.socket)
        quiet.sendall(fc.record(fc.BEGIN_REQUEST, 7, struct.pack('!HB5x', fc.RESPONDER, 0))
                      + fc.record(fc.PARAMS, 7, fc.nameValues({'PATH_INFO': '/'})))
        pm.waitLog("the peer sent nothing for 1.0s while reading a FastCGI request", 15)
        assert quiet.recv(100) == b''           # the worker closed it
    assert pm.request('/').body.startswith(f"pid={worker} ".encode())
    assert pm.proc.returncode is None and not zombies(pm.pid)
    pm.stop()


class BodyTrickler(threading.Thread):
    """Sends an HTTP head with ``Content-Length: 1000``, then one body byte every ``every`` s,
    reading whatever comes back, until the server closes the connection."""

    def __init__(self, path, every):
        super().__init__(daemon=True)
        self.every = every
        self.stop = threading.Event()
        self.received = b''
        self.closed = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)

    def run(self):
        try:
            self.sock.sendall(b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n')
            while not self.stop.is_set():
                if select.select([self.sock], [], [], self.every)[0]:
                    data = self.sock.recv(65536)
                    if not data:
                        break
                    self.received += data
                else:
                    self.sock.sendall(b'x')
        except OSError:
            pass
        self.closed.set()

    def finish(self):
        self.stop.set()
        self.join(10)
        self.sock.close()


@pytest.mark.slow
def test_an_unread_trickled_body_holds_a_busy_worker_only_briefly(tmp_path, procs):
    """Four clients trickle a body the application never reads, into two workers.

    Reading that body is part of the request: the worker shows busy while
    it drains, and gives up after a bounded time and closes the connection,
    so a plain request is answered meanwhile.
    """
    pm = Procman(tmp_path, procs, prefork=2, command='HTTP tests.gateways.apps:hello',
                 extra="MinProcesses 2\nMaxProcesses 2").start()
    tricklers = [BodyTrickler(pm.socket, every=0.2) for _ in range(4)]
    for t in tricklers:
        t.start()
    try:
        waitFor(lambda: any(s['state'] == 'busy'
                             for s in readBoard(pm.scoreboard)[1].values()), 10,
                 message="a worker busy draining a trickled body")
        for t in tricklers:
            assert t.closed.wait(20), "the server never let go of a trickling client"
            assert t.received.startswith(b'HTTP/1.1 200 '), t.received
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(pm.socket)
            s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
            data = b''
            while chunk := s.recv(65536):
                data += chunk
        assert data.startswith(b'HTTP/1.1 200 ') and data.endswith(b'Hello, world!\n')
    finally:
        for t in tricklers:
            t.finish()
    assert pm.proc.returncode is None and not zombies(pm.pid)
    pm.stop()
