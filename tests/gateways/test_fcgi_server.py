"""The FastCGI responder through a real gateway process and raw records."""

import hashlib
import os
import socket
import struct
import threading

import pytest

from tests.gateways.conftest import address
from tests.support import fcgi_client as fc
from tests.support.fcgi_client import FastCGIClient, environFor
from tests.support.procs import waitFor

# Each test runs with the compiled loops (speedups.py) and with pure Python alone.
pytestmark = pytest.mark.usefixtures('speedupsOnAndOff')


@pytest.fixture
def echo(serve):
    proc, spec = serve('FastCGI', 'tests.gateways.apps:echo')
    return address(spec)


def stillServes(addr):
    with FastCGIClient(addr) as c:
        r = c.request(environFor('GET', '/after'))
        assert r.status == 200 and b'path=/after' in r.body
    return True


def test_get_and_post(echo):
    body = bytes(range(256)) * 4096
    with FastCGIClient(echo) as c:
        r = c.request(environFor('POST', '/p', 'a=1', body=body), body=body)
    assert r.status == 200, r.stdout
    assert (r.appStatus, r.protocolStatus) == (0, fc.REQUEST_COMPLETE)
    assert f'sha256={hashlib.sha256(body).hexdigest()}'.encode() in r.body
    assert b'query=a=1' in r.body and b'method=POST' in r.body


def test_keep_conn_serves_requests_in_turn_and_closes_without_it(echo):
    with FastCGIClient(echo) as c:
        for i in range(1, 4):
            r = c.request(environFor('GET', f'/{i}'), reqId=i, keepConn=True)
            assert f'path=/{i}'.encode() in r.body
        r = c.request(environFor('GET', '/last'), reqId=9, keepConn=False)
        assert b'path=/last' in r.body
        assert c.isClosed()


def test_get_values(echo):
    with FastCGIClient(echo) as c:
        values = c.getValues(['FCGI_MAX_CONNS', 'FCGI_MAX_REQS', 'FCGI_MPXS_CONNS', 'OTHER'])
    assert values['FCGI_MPXS_CONNS'] == '0'
    assert values['FCGI_MAX_REQS'] == '1'
    assert int(values['FCGI_MAX_CONNS']) > 0
    assert 'OTHER' not in values


def test_unknown_record_type(echo):
    with FastCGIClient(echo) as c:
        c.sendRecord(200, 0, b'whatever')
        rtype, reqId, content = c.readRecord()
        assert (rtype, reqId, content[0]) == (fc.UNKNOWN_TYPE, 0, 200)
        r = c.request(environFor('GET', '/x'), keepConn=True)
        assert r.status == 200
    assert stillServes(echo)


def test_abort_request_before_it_is_served(echo):
    with FastCGIClient(echo) as c:
        c.beginRequest(1, keepConn=True)
        c.sendRaw(fc.stream(fc.PARAMS, 1, fc.nameValues(environFor('POST', '/a', body=b'x' * 10))))
        c.sendRecord(fc.STDIN, 1, b'xxxxx')
        c.sendRecord(fc.ABORT_REQUEST, 1)
        rtype, reqId, content = c.readRecord()
        assert (rtype, reqId) == (fc.END_REQUEST, 1)
        # The connection was kept: it serves the next request.
        r = c.request(environFor('GET', '/next'), reqId=2, keepConn=True)
        assert b'path=/next' in r.body


def test_multiplexing_attempt_gets_cant_mpx_conn(echo):
    with FastCGIClient(echo) as c:
        c.beginRequest(1, keepConn=True)
        c.beginRequest(2, keepConn=True)
        rtype, reqId, content = c.readRecord()
        assert (rtype, reqId) == (fc.END_REQUEST, 2)
        assert struct.unpack('!LB3x', content)[1] == fc.CANT_MPX_CONN
        c.sendRaw(fc.stream(fc.PARAMS, 1, fc.nameValues(environFor('GET', '/one')))
                  + fc.stream(fc.STDIN, 1, b''))
        r = c.readResponse(1)
        assert b'path=/one' in r.body


def test_unknown_role_is_refused(echo):
    with FastCGIClient(echo) as c:
        c.beginRequest(1, role=fc.RESPONDER + 1)
        rtype, reqId, content = c.readRecord()
        assert (rtype, reqId) == (fc.END_REQUEST, 1)
        assert struct.unpack('!LB3x', content)[1] == fc.UNKNOWN_ROLE
        assert c.isClosed()


def test_truncated_record_then_close_leaves_the_worker_serving(echo):
    with FastCGIClient(echo) as c:
        c.beginRequest(1)
        c.sendRaw(fc.record(fc.PARAMS, 1, b'\x04\x04abcd')[:7])
    assert stillServes(echo)


def test_truncated_name_value_pairs_close_the_connection(echo):
    with FastCGIClient(echo) as c:
        c.beginRequest(1)
        c.sendRaw(fc.record(fc.PARAMS, 1, b'\x10\x10abc') + fc.record(fc.PARAMS, 1)
                  + fc.record(fc.STDIN, 1))
        assert c.isClosed()
    assert stillServes(echo)


def test_bad_version_closes_the_connection(echo):
    with FastCGIClient(echo) as c:
        c.sendRaw(b'GET / HTTP/1.0\r\n\r\n')
        assert c.isClosed()
    assert stillServes(echo)


def test_oversized_params_close_the_connection(echo):
    with FastCGIClient(echo) as c:
        c.beginRequest(1)
        big = fc.nameValues({'HTTP_X_BIG': 'x' * 60000})
        try:
            for _ in range(10):
                c.sendRecord(fc.PARAMS, 1, big)
        except (BrokenPipeError, ConnectionResetError):
            pass
        waitFor(c.isClosed, 10, message="the connection to be closed")
    assert stillServes(echo)


def test_stalled_request_times_out_and_worker_carries_on(serve, tmp_path):
    proc, spec = serve('FastCGI', 'tests.gateways.apps:echo',
                       options=['--read-timeout=0.5'])
    addr = address(spec)
    with FastCGIClient(addr) as c:
        c.beginRequest(1)       # ... and nothing more
        waitFor(c.isClosed, 10, message="the stalled connection to be closed")
    assert stillServes(addr)


def test_wsgi_errors_go_out_as_stderr_records(serve):
    proc, spec = serve('FastCGI', 'tests.gateways.apps:errors')
    with FastCGIClient(address(spec)) as c:
        r = c.request(environFor())
    assert r.status == 200
    assert b'a message on wsgi.errors' in r.stderr


def test_app_exception_is_a_500_with_traceback_on_stderr(serve):
    proc, spec = serve('FastCGI', 'tests.gateways.apps:boom')
    with FastCGIClient(address(spec)) as c:
        r = c.request(environFor('GET', '/boom'), keepConn=True)
        assert r.status == 500
        assert b'Internal Server Error' in r.body and b'boom' not in r.body
        assert b'Traceback' in r.stderr and b'RuntimeError: boom' in r.stderr
        r = c.request(environFor('GET', '/again'), reqId=2)
        assert r.status == 500


@pytest.mark.parametrize('app', ['validHello', 'validEcho', 'validStream'])
def test_pep3333_validator_passes(serve, app):
    proc, spec = serve('FastCGI', f'tests.gateways.apps:{app}')
    with FastCGIClient(address(spec)) as c:
        r = c.request(environFor('POST', '/v', body=b'data'), body=b'data', keepConn=True)
        assert r.status == 200, (r.stdout, r.stderr)
        assert r.stderr == b'', r.stderr.decode()
        r = c.request(environFor('GET', '/v'), reqId=2)
        assert r.status == 200
    assert proc.returncode is None


def test_streaming_response(serve):
    proc, spec = serve('FastCGI', 'tests.gateways.apps:stream')
    with FastCGIClient(address(spec)) as c:
        r = c.request(environFor())
    assert r.body == b''.join(f'line {i}\n'.encode() for i in range(100))


@pytest.mark.parametrize('app', ['badstatus', 'twice', 'twoLengths'])
def test_pep3333_violations_become_500(serve, app):
    proc, spec = serve('FastCGI', f'tests.gateways.apps:{app}')
    with FastCGIClient(address(spec)) as c:
        r = c.request(environFor())
    assert r.status == 500
    assert b'ResponseError' in r.stderr


def test_component_class_is_built_and_served(serve):
    proc, spec = serve('FastCGI', 'tests.gateways.apps:HelloComponent', tcp=True)
    with FastCGIClient(address(spec)) as c:
        r = c.request(environFor())
    assert r.body == b'Hello from a component\n'


def test_no_descriptor_leaks_across_many_connections(serve):
    proc, spec = serve('FastCGI', 'tests.gateways.apps:echo')
    addr = address(spec)
    fds = lambda: len(os.listdir(f'/proc/{proc.pid}/fd'))  # noqa: E731
    with FastCGIClient(addr) as c:
        assert c.request(environFor('GET', '/first')).status == 200
        # The worker closes its end after END_REQUEST: wait for that, or the
        # count below may still include this connection.
        assert c.isClosed()
    before = fds()
    body = b'z' * (2 * 1024 * 1024)     # past the spool limit: a temporary file
    for i in range(20):
        with FastCGIClient(addr) as c:
            if i % 3 == 0:
                c.sendRaw(b'garbage that is not FastCGI')
                c.isClosed()
            elif i % 3 == 1:
                c.request(environFor('POST', '/', body=body), body=body)
            else:
                c.beginRequest(1)
                c.sendRecord(fc.ABORT_REQUEST, 1)
                c.readRecord()
    assert stillServes(addr)
    waitFor(lambda: fds() == before, 5, message=f"the worker's descriptors back to {before}")


def big(environ, start_response):
    """A 32 MB response in one piece."""
    body = b'x' * (32 * 1024 * 1024)
    start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                              ('Content-Length', str(len(body)))])
    return [body]


def test_stdin_beyond_content_length_ends_the_request(serve, tmp_path):
    errlog = tmp_path / 'stderr.txt'
    with open(errlog, 'w') as err:
        proc, spec = serve('FastCGI', 'tests.gateways.apps:echo', stderr=err)
    addr = address(spec)
    with FastCGIClient(addr) as c:
        c.beginRequest(1)
        c.sendRaw(fc.stream(fc.PARAMS, 1, fc.nameValues(
            environFor('POST', '/p', body=b'12345'))))
        try:
            c.sendRaw(fc.record(fc.STDIN, 1, b'12345' + b'y' * 60000)
                      + fc.record(fc.STDIN, 1, b'z' * 60000) + fc.record(fc.STDIN, 1))
        except (BrokenPipeError, ConnectionResetError):
            pass        # the worker may close before it has read everything
        try:
            record = c.readRecord()
        except ConnectionResetError:
            # Closed with some of our records unread: the kernel resets the
            # connection, but only after whatever the worker sent was read.
            record = None
        assert record is None, "the application was run on an over-long body"
    waitFor(lambda: 'beyond its CONTENT_LENGTH of 5' in errlog.read_text(), 10,
             message="the protocol error in the log")
    assert stillServes(addr)


def test_stdin_without_content_length_is_a_body_of_unknown_length(serve):
    """nginx with fastcgi_request_buffering off streams a chunked body: no CONTENT_LENGTH."""
    proc, spec = serve('FastCGI', 'tests.gateways.test_http:readAll')
    with FastCGIClient(address(spec)) as c:
        r = c.request(environFor('POST', '/p', CONTENT_LENGTH=''), body=b'streamed body')
    assert r.body == b'streamed body'


def test_a_peer_that_reads_too_slowly_is_dropped_after_the_deadline(serve):
    """A peer draining 64 KiB every 0.1 s (each wait well inside --read-timeout) would hold
    the worker for most of a minute with a 32 MB response; the worker gives up after
    --read-timeout in all and serves the next."""
    proc, spec = serve('FastCGI', 'tests.gateways.test_fcgi_server:big',
                       options=['--read-timeout=1'])
    addr = address(spec)
    slow = FastCGIClient(addr, timeout=30)
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendRequest(environFor('GET', '/big'))
    got = [0]
    done = threading.Event()

    def trickle():
        try:
            while not done.wait(0.1):
                data = slow.sock.recv(65536)
                if not data:
                    break
                got[0] += len(data)
        except OSError:
            pass
        done.set()
    reader = threading.Thread(target=trickle, daemon=True)
    reader.start()
    try:
        waitFor(lambda: got[0] > 0, 10, message="the slow peer to start reading")
        with FastCGIClient(addr, timeout=10) as c:
            r = c.request(environFor('GET', '/next'))
        assert r.status == 200 and len(r.body) == 32 * 1024 * 1024
        assert done.wait(10), "the slow peer's connection was never closed"
        assert got[0] < 32 * 1024 * 1024
    finally:
        done.set()
        reader.join(10)
        slow.close()


def scriptName(environ, start_response):
    body = repr((environ['SCRIPT_NAME'], environ['PATH_INFO'])).encode()
    start_response('200 OK', [('Content-Length', str(len(body)))])
    return [body]


@pytest.mark.parametrize('params, expected', [
    # nginx's stock fastcgi_params: the whole path in SCRIPT_NAME, no PATH_INFO.
    ({'SCRIPT_NAME': '/visits', 'DOCUMENT_URI': '/visits', 'REQUEST_URI': '/visits?x=1'},
     ('', '/visits')),
    ({'SCRIPT_NAME': '/a b', 'REQUEST_URI': '/a%20b'}, ('', '/a b')),
    # Anything else is left as the web server sent it.
    ({'SCRIPT_NAME': '/app', 'PATH_INFO': '/x', 'REQUEST_URI': '/app/x'}, ('/app', '/x')),
    ({'SCRIPT_NAME': '/dir/index.py', 'DOCUMENT_URI': '/dir/', 'REQUEST_URI': '/dir/'},
     ('/dir/index.py', '')),
    ({'SCRIPT_NAME': '', 'PATH_INFO': '/p', 'REQUEST_URI': '/p'}, ('', '/p')),
])
def test_path_info_from_a_whole_path_script_name(serve, params, expected):
    proc, spec = serve('FastCGI', 'tests.gateways.test_fcgi_server:scriptName')
    env = {'REQUEST_METHOD': 'GET', 'SERVER_NAME': 'x', 'SERVER_PORT': '80',
           'SERVER_PROTOCOL': 'HTTP/1.1', 'QUERY_STRING': '', **params}
    with FastCGIClient(address(spec)) as c:
        r = c.request(env)
    assert r.body == repr(expected).encode()
