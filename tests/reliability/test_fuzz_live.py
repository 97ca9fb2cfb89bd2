"""Fuzzing live workers: mutated and random FastCGI records and HTTP requests.

Each test sends a seeded random stream of bad input to a running pool for a
bounded time, one connection per case, then checks: the manager never
failed, the pool is back to its floor (a worker that died is replaced), no
child is left unreaped, and a valid request still succeeds.
"""

import random
import socket
import struct
import time

import pytest

from tests.reliability.support import zombies
from tests.support import fcgi_client as fc
from tests.support.procman import Procman
from tests.support.procs import waitFor

pytestmark = pytest.mark.slow

FUZZ_SECONDS = 12.0
FLOOR = 2


def _mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(5)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            data[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif op == 2:
            del data[pos:pos + rng.randint(1, 16)]
        elif op == 3:
            data = data[:pos]
        else:
            chunk = data[pos:pos + rng.randint(1, 64)]
            data[pos:pos] = chunk * rng.randint(1, 4)
    return bytes(data)


def _validFastCGI(rng):
    reqId = rng.choice([1, 2, 255, 65535])
    env = fc.environFor(rng.choice(['GET', 'POST', 'HEAD']), '/' + 'x' * rng.randint(0, 40),
                        query='a=1&b=' + 'y' * rng.randint(0, 20))
    body = rng.randbytes(rng.randint(0, 2000))
    if body:
        env['CONTENT_LENGTH'] = str(len(body))
    return (fc.record(fc.BEGIN_REQUEST, reqId,
                      struct.pack('!HB5x', fc.RESPONDER, rng.choice([0, fc.KEEP_CONN])))
            + fc.stream(fc.PARAMS, reqId, fc.nameValues(env))
            + fc.stream(fc.STDIN, reqId, body))


def _randomRecords(rng):
    out = b''
    for _ in range(rng.randint(1, 10)):
        rtype = rng.choice(list(range(0, 14)) + [255])
        content = rng.randbytes(rng.randint(0, 300))
        out += fc.record(rtype, rng.choice([0, 1, 2, 65535]), content,
                         padding=rng.choice([None, 0, 255]))
    return out


def fastcgiCase(rng):
    kind = rng.randrange(4)
    if kind == 0:
        return _mutate(rng, _validFastCGI(rng))
    if kind == 1:
        return _randomRecords(rng)
    if kind == 2:
        return _validFastCGI(rng) + _mutate(rng, _validFastCGI(rng))
    return rng.randbytes(rng.randint(1, 512))


HTTP_SEEDS = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /p?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
]


def httpCase(rng):
    kind = rng.randrange(4)
    if kind == 0:
        return _mutate(rng, rng.choice(HTTP_SEEDS))
    if kind == 1:
        head = rng.choice([b'GET', b'POST', b'\x00', b'G' * 300]) + b' /' + rng.randbytes(20)
        return head + b' HTTP/1.1\r\n' + rng.randbytes(rng.randint(0, 200)) + b'\r\n\r\n'
    if kind == 2:
        return (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + _mutate(rng, b"5\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n"))
    return rng.randbytes(rng.randint(1, 512))


def _send(path, data, rng):
    """Send ``data`` (maybe in pieces, maybe half-closing), read briefly, close."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(0.1)
        try:
            s.connect(path)
            if rng.random() < 0.3:
                cut = rng.randrange(len(data) + 1)
                s.sendall(data[:cut])
                s.sendall(data[cut:])
            else:
                s.sendall(data)
            if rng.random() < 0.5:
                s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        except OSError:
            pass        # a reset, a timeout, a refused write: all fine for the fuzzer


def _fuzz(pm, makeCase, seed):
    rng = random.Random(seed)
    deadline = time.monotonic() + FUZZ_SECONDS
    cases = 0
    while time.monotonic() < deadline:
        _send(pm.socket, makeCase(rng), rng)
        cases += 1
        assert pm.proc.returncode is None, pm.failure()
    return cases


def _afterwards(pm, valid):
    assert pm.proc.returncode is None, pm.failure()
    waitFor(lambda: len(pm.children()) >= FLOOR and not zombies(pm.pid), 20,
             message="the pool back to its floor, no zombies")
    valid()
    log = pm.log()
    # A malformed stream is a logged warning and a closed connection; an
    # unexpected exception in the gateway is logged as an error with its traceback.
    assert 'Traceback' not in log, log[log.index('Traceback') - 500:][:3000]
    return log.count('unexpectedly') + log.count('quick deaths')


def test_fuzz_fastcgi_workers(tmp_path, procs):
    pm = Procman(tmp_path, procs, command='CGI tests.gateways.apps:echo', prefork=FLOOR,
                 extra=f"MinProcesses {FLOOR}\nMaxProcesses 4\nRequestTimeout 10").start()
    cases = _fuzz(pm, fastcgiCase, seed=90)

    def valid():
        r = pm.request('/after', query='ok=1')
        assert r.status == 200 and b'path=/after' in r.body, r.body

    deaths = _afterwards(pm, valid)
    print(f"\nFastCGI fuzz: {cases} cases, {deaths} worker deaths")
    assert deaths == 0, pm.log()[-3000:]
    pm.stop()


def test_fuzz_http_workers(tmp_path, procs):
    pm = Procman(tmp_path, procs, command='HTTP tests.gateways.apps:echo', prefork=FLOOR,
                 extra=f"MinProcesses {FLOOR}\nMaxProcesses 4\nRequestTimeout 10").start()
    cases = _fuzz(pm, httpCase, seed=91)

    def valid():
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(pm.socket)
            s.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b''
            while chunk := s.recv(65536):
                data += chunk
        assert data.startswith(b'HTTP/1.1 200') and b'path=/after' in data, data

    deaths = _afterwards(pm, valid)
    print(f"\nHTTP fuzz: {cases} cases, {deaths} worker deaths")
    assert deaths == 0, pm.log()[-3000:]
    pm.stop()
