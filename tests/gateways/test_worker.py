"""The pre-fork worker loop: idle keep-alive never starves, signals, busy/idle hooks."""

import contextlib
import http.client
import signal
import socket
import threading

import pytest
from zope.interface import implementer
from zope.interface.verify import verifyObject

from peak_lite.running.gateways import FastCGIConnection, HTTPConnection, NullStatus, Worker
from peak_lite.running.gateways.interfaces import IConnection, IWorker
from peak_lite.running.interfaces import IWorkerStatus
from peak_lite.running.mainloop import MainLoop
from tests.gateways.conftest import address
from tests.support.fcgi_client import FastCGIClient, environFor
from tests.support.procs import waitFor


def test_idle_kept_alive_fastcgi_connection_does_not_starve_others(serve):
    proc, spec = serve('FastCGI', 'tests.gateways.apps:echo')
    with FastCGIClient(address(spec)) as idle:
        assert idle.request(environFor('GET', '/first'), keepConn=True).status == 200
        # ``idle`` now waits for its next request, holding the only worker's connection.
        with FastCGIClient(address(spec), timeout=2) as other:
            assert b'path=/second' in other.request(environFor('GET', '/second')).body
        assert b'path=/third' in idle.request(environFor('GET', '/third'), reqId=2).body


def test_idle_kept_alive_http_connection_does_not_starve_others(serve):
    proc, spec = serve('HTTP', 'tests.gateways.apps:echo', tcp=True)
    idle = http.client.HTTPConnection(*address(spec), timeout=10)
    idle.request('GET', '/first')
    idle.getresponse().read()
    other = http.client.HTTPConnection(*address(spec), timeout=2)
    other.request('GET', '/second')
    assert b'path=/second' in other.getresponse().read()
    other.close()
    idle.request('GET', '/third')
    assert b'path=/third' in idle.getresponse().read()
    idle.close()


@pytest.mark.parametrize('protocol', ['FastCGI', 'HTTP'])
def test_sighup_finishes_the_current_request_then_exits(serve, tmp_path, protocol):
    proc, spec = serve(protocol, 'tests.gateways.apps:marked', tcp=True)
    mark = tmp_path / 'in-request'
    result = {}

    def client():
        if protocol == 'FastCGI':
            with FastCGIClient(address(spec)) as c:
                r = c.request(environFor('GET', '/', '1.0', HTTP_X_MARK=str(mark)))
                result['status'], result['body'] = r.status, r.body
        else:
            conn = http.client.HTTPConnection(*address(spec), timeout=10)
            conn.request('GET', '/?1.0', headers={'X-Mark': str(mark)})
            resp = conn.getresponse()
            result['status'], result['body'] = resp.status, resp.read()
            result['connection'] = resp.getheader('Connection')
            conn.close()

    t = threading.Thread(target=client)
    t.start()
    waitFor(mark.exists, 10, message="the request to be in the application")
    proc.signal(signal.SIGHUP)
    t.join(15)
    assert result['status'] == 200 and result['body'] == str(proc.pid).encode()
    assert proc.wait(10) == 0


def test_sigterm_stops_an_idle_worker_now(serve):
    proc, spec = serve('FastCGI', 'tests.gateways.apps:echo')
    with FastCGIClient(address(spec)) as idle:
        idle.request(environFor(), keepConn=True)
        proc.signal(signal.SIGTERM)
        assert proc.wait(5) == 0
        waitFor(idle.isClosed, 5, message="the kept connection to be closed")


# -- in process: the hooks a process manager plugs into ---------------------

@implementer(IWorkerStatus)
class CountingStatus:
    """A hand-written IWorkerStatus that records busy/idle transitions."""

    def __init__(self, stopping=False):
        self.stopping = stopping
        self.events = []

    @contextlib.contextmanager
    def busy(self, line=None):
        self.events.append('busy')
        try:
            yield
        finally:
            self.events.append('idle')

    def responded(self, code):
        self.events.append(code)


class StoppingDuringRequest(CountingStatus):
    """Told to stop while its request runs: its supervisor asked, or the request
    was its last (a status that says stopping before that accepts nothing)."""

    @contextlib.contextmanager
    def busy(self, line=None):
        self.stopping = True
        with super().busy(line):
            yield


class CountingLoop(MainLoop):
    def __init__(self):
        super().__init__(signalHandler=object())
        self.activity = 0

    def activityOccurred(self):
        self.activity += 1
        super().activityOccurred()


def serveInProcess(factory, app, status, client):
    """Run a Worker on a MainLoop in this thread while ``client(address)`` runs in another."""
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(8)
    loop = CountingLoop()
    worker = Worker(listener, factory, app, loop, status)
    worker.start()
    outcome = {}

    def runClient():
        try:
            outcome['value'] = client(listener.getsockname())
        except BaseException as e:
            outcome['error'] = e
        finally:
            loop.eventLoop.call_soon_threadsafe(loop.stop)

    t = threading.Thread(target=runClient)
    t.start()
    try:
        loop.run(stopAfter=30)
    finally:
        worker.close()
        listener.close()
        t.join(10)
    if 'error' in outcome:
        raise outcome['error']
    return outcome['value'], loop, worker


def hello(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'hi']


def test_each_request_is_busy_then_idle_and_counts_as_activity():
    status = CountingStatus()

    def client(addr):
        with FastCGIClient(addr) as c:
            for i in range(1, 4):
                assert c.request(environFor(), reqId=i, keepConn=True).body == b'hi'
    _, loop, worker = serveInProcess(FastCGIConnection, hello, status, client)
    assert status.events == ['busy', 200, 'idle'] * 3
    assert loop.activity == 3 and worker.requestsServed == 3


def test_http_says_connection_close_once_the_worker_is_stopping():
    def client(addr):
        conn = http.client.HTTPConnection(*addr, timeout=10)
        conn.request('GET', '/')
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.getheader('Connection'), body
    (connection, body), _, _ = serveInProcess(
        HTTPConnection, hello, StoppingDuringRequest(), client)
    assert (connection, body) == ('close', b'hi')


def test_interfaces_are_implemented():
    listener = socket.socket()
    loop = MainLoop(signalHandler=object())
    worker = Worker(listener, FastCGIConnection, hello, loop)
    verifyObject(IWorker, worker)
    verifyObject(IWorkerStatus, NullStatus())
    verifyObject(IWorkerStatus, CountingStatus())
    a, b = socket.socketpair()
    with a, b:
        verifyObject(IConnection, FastCGIConnection(a, worker))
        verifyObject(IConnection, HTTPConnection(b, worker))
    listener.close()
    with NullStatus().busy():
        pass
