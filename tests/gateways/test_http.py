"""The HTTP/1.1 gateway through a real process and real clients."""

import hashlib
import http.client
import socket

import pytest

from tests.gateways.conftest import address
from tests.support.procs import waitFor

# Each test runs with the compiled loops (speedups.py) and with pure Python alone.
pytestmark = pytest.mark.usefixtures('speedupsOnAndOff')


@pytest.fixture
def echo(serve):
    proc, spec = serve('HTTP', 'tests.gateways.apps:echo', tcp=True)
    return address(spec)


def recvUntilClosed(sock, timeout=10):
    sock.settimeout(timeout)
    data = b''
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_keep_alive_with_a_real_client(echo):
    conn = http.client.HTTPConnection(*echo, timeout=10)
    pids = set()
    for i in range(5):
        conn.request('GET', f'/k/{i}?q={i}')
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200
        assert f'path=/k/{i}\nquery=q={i}\n'.encode() in body
        pids.add(body.split(b'pid=')[1])
        assert resp.getheader('Content-Length') == str(len(body))
    # One connection served all five (http.client reconnects silently otherwise).
    assert conn.sock is not None
    conn.close()


def test_pipelined_requests(echo):
    with socket.create_connection(echo) as s:
        s.sendall(b''.join(f'GET /p/{i} HTTP/1.1\r\nHost: x\r\n\r\n'.encode() for i in range(3))
                  + b'GET /p/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        data = recvUntilClosed(s)
    assert data.count(b'HTTP/1.1 200 ') == 4
    positions = [data.index(f'path=/p/{i}\n'.encode()) for i in (0, 1, 2, 'last')]
    assert positions == sorted(positions)


def test_head_has_no_body(echo):
    conn = http.client.HTTPConnection(*echo, timeout=10)
    conn.request('HEAD', '/h')
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b''
    conn.request('GET', '/after-head')
    resp = conn.getresponse()
    assert b'path=/after-head' in resp.read()
    conn.close()


def test_chunked_request_body(serve):
    proc, spec = serve('HTTP', 'tests.gateways.apps:validEcho', tcp=True)
    payload = b'0123456789abcdef' * 5000
    body = b''.join(b'%x\r\n%s\r\n' % (len(payload[i:i + 7000]), payload[i:i + 7000])
                    for i in range(0, len(payload), 7000)) + b'0\r\n\r\n'
    with socket.create_connection(address(spec)) as s:
        # validEcho reads CONTENT_LENGTH bytes; a chunked body has none, so the
        # gateway's wsgi.input still has to end cleanly at the body's end.
        s.sendall(b'POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n'
                  b'Connection: close\r\n\r\n' + body)
        data = recvUntilClosed(s)
    assert b'HTTP/1.1 200' in data and b'length=0' in data


def test_chunked_body_is_read_whole(serve):
    proc, spec = serve('HTTP', 'tests.gateways.apps:checksum', tcp=True)
    payload = bytes(range(256)) * 400
    conn = http.client.HTTPConnection(*address(spec), timeout=10)
    conn.request('POST', '/c', body=iter([payload[:50000], payload[50000:]]),
                 headers={'Content-Length': str(len(payload))})
    resp = conn.getresponse()
    assert resp.read() == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}\n".encode()
    conn.close()


def test_expect_100_continue(serve):
    proc, spec = serve('HTTP', 'tests.gateways.apps:checksum', tcp=True)
    payload = b'x' * 100000
    with socket.create_connection(address(spec)) as s:
        s.settimeout(10)
        s.sendall(b'PUT /u HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n'
                  b'Content-Length: %d\r\n\r\n' % len(payload))
        interim = s.recv(4096)
        assert interim.startswith(b'HTTP/1.1 100 '), interim
        s.sendall(payload)
        reply = b''
        while b'\n' not in reply.partition(b'\r\n\r\n')[2]:
            reply += s.recv(4096)
    assert reply.startswith(b'HTTP/1.1 200 ')
    assert f"{len(payload)} {hashlib.sha256(payload).hexdigest()}".encode() in reply


def test_idle_and_slow_heads_time_out(serve):
    proc, spec = serve('HTTP', 'tests.gateways.apps:echo', tcp=True,
                       options=['--idle-timeout=0.5', '--read-timeout=0.5'])
    with socket.create_connection(address(spec)) as idle, \
            socket.create_connection(address(spec)) as slow:
        slow.sendall(b'GET /slow HTTP/1.1\r\nHo')
        assert recvUntilClosed(idle) == b''
        assert recvUntilClosed(slow) == b''


def test_stalled_body_times_out(serve):
    proc, spec = serve('HTTP', 'tests.gateways.apps:checksum', tcp=True,
                       options=['--read-timeout=0.5'])
    with socket.create_connection(address(spec)) as s:
        s.sendall(b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc')
        assert recvUntilClosed(s) == b''
    conn = http.client.HTTPConnection(*address(spec), timeout=10)
    conn.request('POST', '/', body=b'abc')
    assert conn.getresponse().status == 200
    conn.close()


def test_bad_request_gets_400_and_worker_carries_on(echo):
    with socket.create_connection(echo) as s:
        s.sendall(b'NOT HTTP AT ALL\r\n\r\n')
        data = recvUntilClosed(s)
    assert data.startswith(b'HTTP/1.1 400 ')
    with socket.create_connection(echo) as s:
        s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\nX-Big: ' + b'a' * 100000 + b'\r\n\r\n')
        data = recvUntilClosed(s)
    assert data.startswith(b'HTTP/1.1 431 ')
    conn = http.client.HTTPConnection(*echo, timeout=10)
    conn.request('GET', '/fine')
    assert conn.getresponse().status == 200
    conn.close()


def test_app_exception_is_a_500_with_the_traceback_on_stderr(serve, tmp_path):
    errlog = tmp_path / 'stderr.txt'
    with open(errlog, 'w') as err:
        proc, spec = serve('HTTP', 'tests.gateways.apps:boom', tcp=True, stderr=err)
    conn = http.client.HTTPConnection(*address(spec), timeout=10)
    conn.request('GET', '/boom')
    resp = conn.getresponse()
    assert resp.status == 500
    body = resp.read()
    assert b'Internal Server Error' in body and b'RuntimeError' not in body
    conn.close()
    waitFor(lambda: 'RuntimeError: boom' in errlog.read_text(), 10,
             message="the traceback on the gateway's stderr")
    assert 'Traceback' in errlog.read_text()


@pytest.mark.parametrize('app', ['validHello', 'validEcho', 'validStream'])
def test_pep3333_validator_passes(serve, app):
    proc, spec = serve('HTTP', f'tests.gateways.apps:{app}', tcp=True)
    conn = http.client.HTTPConnection(*address(spec), timeout=10)
    for _ in range(2):
        conn.request('POST', '/v', body=b'data')
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read()
    conn.close()
    waitFor(lambda: proc.returncode is None, 1)


def test_unix_socket(serve):
    proc, spec = serve('HTTP', 'tests.gateways.apps:hello')
    s = socket.socket(socket.AF_UNIX)
    s.connect(address(spec))
    s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    data = recvUntilClosed(s)
    s.close()
    assert data.startswith(b'HTTP/1.1 200 ') and data.endswith(b'Hello, world!\n')


def statusFromQuery(environ, start_response):
    """Answer with the status in the query (``?204``), with the app's own headers if asked."""
    code = environ['QUERY_STRING'] or '200'
    reasons = {'204': 'No Content', '304': 'Not Modified', '200': 'OK'}
    start_response(f'{code} {reasons[code]}', [('Content-Type', 'text/plain')])
    return [b'']


def readLines(environ, start_response):
    """readline(None) and readline(-1) each return one line, the way file objects do."""
    stream = environ['wsgi.input']
    first = stream.readline(None)
    second = stream.readline(-1)
    rest = stream.read(None)
    body = repr((first, second, rest)).encode()
    start_response('200 OK', [('Content-Length', str(len(body)))])
    return [body]


def badHeader(environ, start_response):
    """A header the wire cannot carry: the kind given in the query."""
    kind = environ['QUERY_STRING']
    if kind == 'twoLengths':
        start_response('200 OK', [('Content-Length', '4'), ('Content-Length', '5')])
        return [b'body']
    value = {'ctl': 'a\x01b', 'length': 'many', 'del': 'x\x7fy'}[kind]
    name = 'Content-Length' if kind == 'length' else 'X-Bad'
    start_response('200 OK', [(name, value)])
    return [b'body']


def remote(environ, start_response):
    body = repr((environ['REMOTE_ADDR'], environ['REMOTE_PORT'])).encode()
    start_response('200 OK', [('Content-Length', str(len(body)))])
    return [body]


def readAll(environ, start_response):
    data = environ['wsgi.input'].read()
    start_response('200 OK', [('Content-Length', str(len(data)))])
    return [data]


def heads(data):
    """(status line, {lowercase name: value}, the bytes after the head) of a response."""
    head, _, rest = data.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    return lines[0], {n.strip().lower(): v.strip() for n, _, v in
                      (line.partition(':') for line in lines[1:])}, rest


@pytest.mark.parametrize('code', ['204', '304'])
def test_204_and_304_have_no_content_length_and_no_body(serve, code):
    proc, spec = serve('HTTP', 'tests.gateways.test_http:statusFromQuery', tcp=True)
    with socket.create_connection(address(spec)) as s:
        s.sendall(f'GET /?{code} HTTP/1.1\r\nHost: x\r\n\r\n'
                  'GET /?200 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'.encode())
        data = recvUntilClosed(s)
    status, headers, rest = heads(data)
    assert status.startswith(f'HTTP/1.1 {code} ')
    assert 'content-length' not in headers and 'transfer-encoding' not in headers
    # Nothing follows the head but the next response: no body, no chunk terminator.
    assert rest.startswith(b'HTTP/1.1 200 '), rest


def test_readline_none(serve):
    proc, spec = serve('HTTP', 'tests.gateways.test_http:readLines', tcp=True)
    conn = http.client.HTTPConnection(*address(spec), timeout=10)
    conn.request('POST', '/', body=b'one\ntwo\nthree')
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (200, repr((b'one\n', b'two\n', b'three')).encode())
    conn.close()


@pytest.mark.parametrize('kind', ['ctl', 'del', 'length', 'twoLengths'])
def test_an_invalid_header_from_the_app_is_a_500(serve, kind):
    proc, spec = serve('HTTP', 'tests.gateways.test_http:badHeader', tcp=True)
    conn = http.client.HTTPConnection(*address(spec), timeout=10)
    conn.request('GET', f'/?{kind}')
    resp = conn.getresponse()
    assert resp.status == 500 and b'Internal Server Error' in resp.read()
    conn.close()


def test_bad_chunked_framing_is_a_400_without_a_traceback(serve, tmp_path):
    errlog = tmp_path / 'stderr.txt'
    with open(errlog, 'w') as err:
        proc, spec = serve('HTTP', 'tests.gateways.test_http:readAll', tcp=True, stderr=err)
    with socket.create_connection(address(spec)) as s:
        s.sendall(b'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
                  b'5\r\nhello\r\nzz\r\n')
        data = recvUntilClosed(s)
    assert data.startswith(b'HTTP/1.1 400 '), data
    conn = http.client.HTTPConnection(*address(spec), timeout=10)
    conn.request('POST', '/', body=b'fine')
    assert conn.getresponse().read() == b'fine'
    conn.close()
    text = errlog.read_text()
    assert 'Traceback' not in text and 'application error' not in text, text


def test_remote_addr_over_a_unix_socket_is_empty(serve):
    proc, spec = serve('HTTP', 'tests.gateways.test_http:remote')
    s = socket.socket(socket.AF_UNIX)
    s.connect(address(spec))
    s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    data = recvUntilClosed(s)
    s.close()
    assert data.endswith(repr(('', '')).encode()), data
