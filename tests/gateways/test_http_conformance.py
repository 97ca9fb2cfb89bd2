"""RFC 9110/9112 conformance of the HTTP gateway, one raw-bytes exchange per rule.

Each test writes the request exactly as bytes, reads until the server
closes (or one response is in) and checks the status, whether the
connection closed, and what reached the application.
"""

import json
import socket

import pytest

from tests.gateways.conftest import address

# Each test runs with the compiled loops (speedups.py) and with pure Python alone.
pytestmark = pytest.mark.usefixtures('speedupsOnAndOff')

REPORTED = ('REQUEST_METHOD', 'PATH_INFO', 'QUERY_STRING', 'REQUEST_URI', 'HTTP_HOST',
            'HTTP_X_FORWARDED_FOR', 'REMOTE_ADDR', 'REMOTE_PORT', 'CONTENT_LENGTH')


def report(environ, start_response):
    """Answer with the request's environ keys (JSON); reads the whole body with read()."""
    body = environ['wsgi.input'].read()
    out = {key: environ.get(key) for key in REPORTED}
    out['body'] = body.decode('latin-1')
    out['headers'] = sorted(k for k in environ if k.startswith('HTTP_'))
    data = json.dumps(out).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(data)))])
    return [data]


@pytest.fixture
def server(serve):
    proc, spec = serve('HTTP', 'tests.gateways.test_http_conformance:report', tcp=True)
    return address(spec)


def exchange(addr, data, timeout=10):
    """Send ``data``, read until the server closes; return (all bytes, closed)."""
    family = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
    with socket.socket(family) as s:
        s.settimeout(timeout)
        s.connect(addr)
        s.sendall(data)
        out = b''
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            return out, False
        except ConnectionResetError:
            pass
        return out, True


def responses(data):
    """Split a byte stream of responses that all carry Content-Length."""
    found = []
    while data:
        head, _, rest = data.partition(b'\r\n\r\n')
        lines = head.split(b'\r\n')
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b':')
            headers[name.strip().lower().decode()] = value.strip().decode()
        length = int(headers.get('content-length', 0))
        found.append((int(lines[0].split()[1]), headers, rest[:length]))
        data = rest[length:]
    return found


def one(addr, data):
    """One request that must be refused: return its status; assert the connection closed."""
    out, closed = exchange(addr, data)
    assert closed, f"the server kept the connection open after {out[:200]!r}"
    found = responses(out)
    assert len(found) == 1, out
    return found[0][0]


def served(addr, data):
    out, closed = exchange(addr, data)
    found = responses(out)
    assert found and found[0][0] == 200, out
    return json.loads(found[0][2])


def test_absolute_form_target_gives_its_path_and_host(server):
    env = served(server, b'GET http://example.com:8080/foo/b%20r?x=1 HTTP/1.1\r\n'
                         b'Host: other.example\r\nConnection: close\r\n\r\n')
    assert env['PATH_INFO'] == '/foo/b r'
    assert env['QUERY_STRING'] == 'x=1'
    # RFC 9112 3.2.2: the authority of an absolute-form target replaces Host.
    assert env['HTTP_HOST'] == 'example.com:8080'


def test_absolute_form_without_a_path_is_the_root(server):
    env = served(server, b'GET http://example.com HTTP/1.1\r\nHost: example.com\r\n'
                         b'Connection: close\r\n\r\n')
    assert env['PATH_INFO'] == '/' and env['HTTP_HOST'] == 'example.com'


@pytest.mark.parametrize('ctl', [b'\x07', b'\x7f', b'\x01', b'\x1b'])
def test_ctl_character_in_a_field_value_is_400(server, ctl):
    assert one(server, b'GET / HTTP/1.1\r\nHost: x\r\nX-Note: a' + ctl + b'b\r\n\r\n') == 400


def test_content_length_with_chunked_is_400_and_the_smuggled_request_is_not_served(server):
    smuggled = b'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'
    body = b'0\r\n\r\n' + smuggled
    out, closed = exchange(server, b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n'
                                   b'Transfer-Encoding: chunked\r\n\r\n' % len(body) + body)
    assert closed
    assert [status for status, _, _ in responses(out)] == [400]
    assert b'smuggled' not in out


def test_transfer_encoding_in_http_1_0_is_400(server):
    assert one(server, b'POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
                       b'5\r\nhello\r\n0\r\n\r\n') == 400


def test_asterisk_target_only_for_options(server):
    assert one(server, b'GET * HTTP/1.1\r\nHost: x\r\n\r\n') == 400
    out, _ = exchange(server, b'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    assert responses(out)[0][0] == 200


def test_authority_target_only_for_connect(server):
    assert one(server, b'GET example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n') == 400


def test_connect_is_refused_not_tunnelled(server):
    assert one(server, b'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n') \
        == 405


def test_relative_target_is_400(server):
    assert one(server, b'GET foo/bar HTTP/1.1\r\nHost: x\r\n\r\n') == 400


@pytest.mark.parametrize('version', [b'HTTP/2.0', b'HTTP/3.0', b'HTTP/1.2', b'HTTP/0.9'])
def test_unsupported_version_is_505(server, version):
    assert one(server, b'GET / ' + version + b'\r\nHost: x\r\n\r\n') == 505


def test_duplicate_or_invalid_content_length_is_400(server):
    assert one(server, b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n'
                       b'Content-Length: 4\r\n\r\nabcd') == 400
    assert one(server, b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n'
                       b'Content-Length: 3\r\n\r\nabc') == 400
    assert one(server, b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc') == 400


def test_missing_or_repeated_host_in_http_1_1_is_400(server):
    assert one(server, b'GET / HTTP/1.1\r\n\r\n') == 400
    assert one(server, b'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n') == 400


def test_header_names_with_underscores_are_dropped(server):
    env = served(server, b'GET / HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 6.6.6.6\r\n'
                         b'X-Forwarded-For: 10.0.0.1\r\nConnection: close\r\n\r\n')
    assert env['HTTP_X_FORWARDED_FOR'] == '10.0.0.1'
    env = served(server, b'GET / HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 6.6.6.6\r\n'
                         b'Connection: close\r\n\r\n')
    assert env['HTTP_X_FORWARDED_FOR'] is None


def test_field_values_lose_surrounding_whitespace(server):
    env = served(server, b'GET / HTTP/1.1\r\nHost:   x  \t\r\nConnection: close\r\n\r\n')
    assert env['HTTP_HOST'] == 'x'


def test_request_target_limit_is_414(server):
    target = b'/' + b'a' * 8192
    assert one(server, b'GET ' + target + b' HTTP/1.1\r\nHost: x\r\n\r\n') == 414
    env = served(server, b'GET /' + b'a' * 8000 + b' HTTP/1.1\r\nHost: x\r\n'
                         b'Connection: close\r\n\r\n')
    assert len(env['PATH_INFO']) == 8001


def test_header_count_limit_is_431(server):
    many = b''.join(b'X-H%d: v\r\n' % i for i in range(101))
    assert one(server, b'GET / HTTP/1.1\r\nHost: x\r\n' + many + b'\r\n') == 431
    fine = b''.join(b'X-H%d: v\r\n' % i for i in range(98))
    assert len(served(server, b'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n'
                              + fine + b'\r\n')['headers']) == 100
    # Fields dropped for an underscore in their name count too: they were read.
    dropped = b''.join(b'X_H%d: v\r\n' % i for i in range(101))
    assert one(server, b'GET / HTTP/1.1\r\nHost: x\r\n' + dropped + b'\r\n') == 431


def test_header_field_size_limit_is_431(server):
    assert one(server, b'GET / HTTP/1.1\r\nHost: x\r\nX-Big: ' + b'a' * 8200 + b'\r\n\r\n') \
        == 431
    env = served(server, b'GET / HTTP/1.1\r\nHost: x\r\nX-Big: ' + b'a' * 8000
                         + b'\r\nConnection: close\r\n\r\n')
    assert 'HTTP_X_BIG' in env['headers']


def test_a_head_trickled_past_the_limit_is_431(server):
    """A head that arrives in many pieces is bounded too, not only one that arrives whole."""
    with socket.create_connection(server, timeout=10) as s:
        s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n')
        try:
            for i in range(200):
                s.sendall(b'X-P%d: ' % i + b'v' * 1000 + b'\r\n')
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b''
        try:
            while chunk := s.recv(65536):
                out += chunk
        except ConnectionResetError:
            pass
    assert out.startswith(b'HTTP/1.1 431 '), out[:200]


def test_bad_chunked_framing_read_by_the_app_is_400(server):
    out, closed = exchange(server, b'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked'
                                   b'\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n')
    assert closed
    assert [status for status, _, _ in responses(out)] == [400], out


def test_pipelined_requests_then_garbage(server):
    out, closed = exchange(server, b'GET /a HTTP/1.1\r\nHost: x\r\n\r\n'
                                   b'GET /b HTTP/1.1\r\nHost: x\r\n\r\nBAD\x00 stuff\r\n\r\n')
    assert closed
    found = responses(out)
    assert [status for status, _, _ in found] == [200, 200, 400]
    assert [json.loads(body)['PATH_INFO'] for _, _, body in found[:2]] == ['/a', '/b']


def wrongLength(environ, start_response):
    start_response('200 OK', [('Content-Length', '100')])
    return [b'short']


def test_http_1_0_gets_a_close_delimited_stream(serve):
    proc, spec = serve('HTTP', 'tests.gateways.apps:stream', tcp=True)
    out, closed = exchange(address(spec), b'GET / HTTP/1.0\r\n\r\n')
    assert closed
    head, _, body = out.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 200 ') and b'chunked' not in head.lower()
    assert body == b''.join(b'line %d\n' % i for i in range(100))


def test_a_body_that_contradicts_its_content_length_is_a_500(serve):
    proc, spec = serve('HTTP', 'tests.gateways.test_http_conformance:wrongLength', tcp=True)
    out, closed = exchange(address(spec), b'GET / HTTP/1.1\r\nHost: x\r\n'
                                          b'Connection: close\r\n\r\n')
    assert responses(out)[0][0] == 500


@pytest.mark.parametrize('head', [
    b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n',
    b'POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n',
])
def test_an_unread_body_too_big_to_drain_or_never_sent_closes(serve, head):
    proc, spec = serve('HTTP', 'tests.gateways.apps:hello', tcp=True)
    out, closed = exchange(address(spec), head)
    assert closed
    status, headers, body = responses(out)[0]
    assert status == 200 and headers['connection'] == 'close' and b'100 Continue' not in out


def test_expect_100_continue_in_http_1_0_is_ignored(server):
    out, closed = exchange(server, b'POST / HTTP/1.0\r\nExpect: 100-continue\r\n'
                                   b'Content-Length: 5\r\n\r\nhello')
    assert closed and b'100 Continue' not in out
    assert json.loads(responses(out)[0][2])['body'] == 'hello'


def test_an_upgrade_request_is_served_without_upgrading_and_the_connection_closes(server):
    out, closed = exchange(server, b'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n'
                                   b'Upgrade: websocket\r\n\r\n')
    assert closed
    status, headers, body = responses(out)[0]
    assert status == 200 and headers['connection'] == 'close'
    assert json.loads(body)['PATH_INFO'] == '/ws'
