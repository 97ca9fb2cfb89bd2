"""The status listener's HTTP responder on a real ManagerLoop with real sockets.

The loop runs in the test's own thread, one turn at a time, while client
sockets talk to it: so anything that blocked the loop would hang the test.
"""

import socket
import time

import pytest
from zope.interface.verify import verifyClass, verifyObject

from peak_lite.running.procman.loop import ManagerLoop
from peak_lite.running.procman.status import (
    IStatusService, ITally, StatusService, Tally, exitReason)
from peak_lite.running.procman.status.server import MAX_CLIENTS, MAX_HEAD, StatusServer


class Served:
    """A loop and a StatusServer on 127.0.0.1, answering '/big' with ``size`` bytes."""

    def __init__(self, timeout=5.0, size=8 << 20):
        self.loop = ManagerLoop()
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(64)
        self.address = self.sock.getsockname()
        self.size = size
        self.asked = []
        self.server = StatusServer(self.sock, self.loop, self.respond, timeout)

    def respond(self, method, path, headers):
        self.asked.append((method, path, headers.get('accept')))
        if path == '/big':
            return 200, 'text/plain', b'x' * self.size
        return 200, 'text/plain', f'{path}\n'.encode()

    def client(self):
        c = socket.create_connection(self.address, timeout=5)
        c.setblocking(False)
        return c

    def pump(self, until, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            result = until()
            if result:
                return result
            assert time.monotonic() < deadline, "the status server did not answer in time"
            self.loop.runOnce(0.02)

    def close(self):
        self.server.close()
        self.sock.close()
        self.loop.close()


def read_answer(served, c, expect=1):
    """Pump the loop until ``expect`` whole answers arrived on ``c``; return the bytes."""
    got = [b'']

    def whole():
        try:
            chunk = c.recv(1 << 20)
            got[0] += chunk if chunk else b''
            if not chunk:
                return got[0] or b'closed'
        except BlockingIOError:
            pass
        answers = got[0].count(b'HTTP/1.1 ')
        if answers >= expect:
            last = got[0].rsplit(b'HTTP/1.1 ', 1)[1]
            head, _, body = last.partition(b'\r\n\r\n')
            length = int(head.split(b'Content-Length: ')[1].split(b'\r\n')[0])
            return got[0] if len(body) >= length else None
        return None
    return served.pump(whole)


@pytest.fixture
def served():
    s = Served()
    yield s
    s.close()


def test_keep_alive_pipelining_and_accept_header(served):
    c = served.client()
    c.sendall(b'GET /a HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n'
              b'GET /b?q=1 HTTP/1.1\r\nHost: x\r\n\r\n')
    data = read_answer(served, c, expect=2)
    assert data.count(b'HTTP/1.1 200 OK') == 2 and data.endswith(b'/b\n')
    assert served.asked == [('GET', '/a', 'text/plain'), ('GET', '/b', None)]
    c.sendall(b'HEAD /c HTTP/1.1\r\nConnection: close\r\n\r\n')
    data = served.pump(lambda: _recvUntilClosed(c))
    assert data.startswith(b'HTTP/1.1 200 OK') and b'Connection: close' in data
    assert data.endswith(b'\r\n\r\n')      # HEAD: headers only
    c.close()


_received = {}


def _recvUntilClosed(c):
    """Everything ``c`` received once the server closed it (b'closed' if nothing), else None."""
    buffer = _received.setdefault(c, [])
    try:
        chunk = c.recv(65536)
    except BlockingIOError:
        return None
    if chunk:
        buffer.append(chunk)
        return None
    data = b''.join(_received.pop(c))
    return data or b'closed'


@pytest.mark.parametrize('request_bytes, code', [
    (b'POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n', b'405'),
    (b'GARBAGE\r\n\r\n', b'400'),
    (b'GET / HTTP/1.1\r\nbad header line\r\n\r\n', b'400'),
    (b'GET / HTTP/1.1\r\nX: ' + b'y' * (MAX_HEAD + 10), b'431'),
])
def test_bad_requests_get_an_error_and_the_connection_closes(served, request_bytes, code):
    c = served.client()
    c.sendall(request_bytes)
    data = served.pump(lambda: _recvUntilClosed(c))
    assert data.split(b' ')[1] == code and b'Connection: close' in data
    c.close()
    assert served.pump(lambda: not served.server.clients)


def test_a_stalled_client_and_a_reader_that_never_reads_do_not_block_others():
    served = Served(timeout=0.5)
    clients = []
    try:
        stalled = served.client()
        stalled.sendall(b'GET /half HTTP/1.1\r\nHost:')      # and nothing more
        hog = served.client()
        hog.sendall(b'GET /big HTTP/1.1\r\n\r\n')            # 8 MB it never reads
        served.pump(lambda: len(served.server.clients) == 2 and
                    any(c.outbox for c in served.server.clients.values()))
        quick = served.client()
        clients += [stalled, hog, quick]
        quick.sendall(b'GET /quick HTTP/1.1\r\n\r\n')
        assert read_answer(served, quick).endswith(b'/quick\n')
        # Past the timeout: the stalled one gets a 408, the hog is dropped.
        data = served.pump(lambda: _recvUntilClosed(stalled), timeout=5)
        assert data.startswith(b'HTTP/1.1 408')
        served.pump(lambda: len(served.server.clients) == 0, timeout=5)
    finally:
        for c in clients:
            c.close()
        served.close()


def test_at_most_max_clients_at_once_the_oldest_goes(served):
    clients = [served.client() for _ in range(MAX_CLIENTS + 1)]
    served.pump(lambda: len(served.server.clients) == MAX_CLIENTS and not _pending(served))
    assert served.pump(lambda: _recvUntilClosed(clients[0])) == b'closed'
    clients[-1].sendall(b'GET /last HTTP/1.1\r\n\r\n')
    assert read_answer(served, clients[-1]).endswith(b'/last\n')
    for c in clients:
        c.close()


def _pending(served):
    import select
    return bool(select.select([served.sock], [], [], 0)[0])


class _Child:
    def __init__(self, stopStage, stopReason):
        self.stopStage, self.stopReason = stopStage, stopReason


def test_exit_reasons_from_the_managers_stop_reasons():
    assert verifyObject(ITally, Tally()) and verifyClass(IStatusService, StatusService)
    cases = {(None, None): 'crash', ('TERM', 'request timeout'): 'timeout',
             ('HUP', 'recycled after 4 requests (limit 4)'): 'max_requests',
             ('HUP', 'idle'): 'idle', ('HUP', 'floor lowered'): 'idle',
             ('HUP', 'restart'): 'reload', ('HUP', 'stop'): 'stop', ('TERM', 'quit'): 'stop',
             ('HUP', 'memory'): 'memory', ('HUP', 'reload'): 'reload'}
    for (stage, reason), expected in cases.items():
        assert exitReason(_Child(stage, reason)) == expected, (stage, reason)


def test_the_tally_crosses_an_exec_and_refuses_what_it_did_not_write():
    tally = Tally()
    tally.spawned()
    tally.reloaded(True)
    tally.exits['reload'] += 2
    environ = {}
    tally.carryAcrossExec(environ)
    again = Tally.fromEnvironment(environ)
    assert not environ                       # taken out: the children never see it
    assert (again.spawns, again.reloads, again.exits['reload']) == (1, {'accepted': 1,
                                                                        'refused': 0}, 2)
    for junk in ('nonsense', '{}', '{"requests": "x"}', '[1, 2]'):
        assert Tally.fromEnvironment({'PEAK_PROCMAN_TALLY': junk}).spawns == 0
