"""WSGIRequest: PEP 3333 checks, write(), iteration, close() and the generic 500.

Every test runs with the compiled header check (speedups.py) and without it.
"""

import io
import sys

import pytest

from peak_lite.running.gateways.wsgi import (
    ERROR_BODY, ResponseError, WSGIRequest, baseEnviron, checkHeaders, checkStatus)

pytestmark = pytest.mark.usefixtures('speedupsOnAndOff')


class Recorder(WSGIRequest):
    """Frames as readable text and records each transmit."""

    def __init__(self, app):
        self.errors = io.StringIO()
        super().__init__(app, baseEnviron({'REQUEST_METHOD': 'GET'}, io.BytesIO(), self.errors))
        self.sent = []

    def frameHead(self, status, headers, body):
        return f'{status}|{headers}|'.encode()

    def frameBody(self, data):
        return data

    def frameEnd(self):
        return b'|END'

    def transmit(self, data):
        self.sent.append(data)


def run(app):
    r = Recorder(app)
    r.serve()
    return r


def test_a_list_body_goes_out_in_one_transmit():
    def app(environ, start_response):
        start_response('200 OK', [('A', 'b')])
        return [b'one', b'two']
    r = run(app)
    assert r.sent == [b"200 OK|[('A', 'b')]|onetwo|END"]
    assert not r.failed


def test_a_generator_is_sent_block_by_block_and_closed():
    closed = []

    class Body:
        def __iter__(self):
            yield b'a'
            yield b''
            yield b'b'

        def close(self):
            closed.append(True)

    def app(environ, start_response):
        start_response('200 OK', [])
        return Body()
    r = run(app)
    assert r.sent == [b'200 OK|[]|a', b'b', b'|END']
    assert closed == [True]


def test_headers_wait_for_the_first_nonempty_block_so_errors_can_still_be_500s():
    def app(environ, start_response):
        start_response('200 OK', [])
        yield b''
        raise ValueError('late but before any body')
    r = run(app)
    assert r.sent[0].startswith(b'500 Internal Server Error|') and r.failed
    assert ERROR_BODY in r.sent[0]
    assert 'ValueError: late but before any body' in r.errors.getvalue()


def test_write_callable_transmits_at_once():
    def app(environ, start_response):
        write = start_response('200 OK', [])
        write(b'early')
        return [b'late']
    assert run(app).sent == [b'200 OK|[]|early', b'late|END']


def test_error_after_headers_breaks_the_response():
    def app(environ, start_response):
        start_response('200 OK', [])
        yield b'partial'
        raise RuntimeError('mid-stream')
    r = run(app)
    assert r.sent == [b'200 OK|[]|partial'] and r.broken and r.failed
    assert 'RuntimeError: mid-stream' in r.errors.getvalue()


def test_exc_info_replaces_headers_before_they_are_sent():
    def app(environ, start_response):
        start_response('200 OK', [])
        try:
            raise KeyError('x')
        except KeyError:
            start_response('503 Busy', [('Retry-After', '1')], sys.exc_info())
        return [b'busy']
    assert run(app).sent == [b"503 Busy|[('Retry-After', '1')]|busy|END"]


def test_exc_info_after_headers_reraises():
    def app(environ, start_response):
        write = start_response('200 OK', [])
        write(b'x')
        try:
            raise KeyError('original')
        except KeyError:
            start_response('500 Oops', [], sys.exc_info())
        return []
    r = run(app)
    assert r.broken and "KeyError: 'original'" in r.errors.getvalue()


@pytest.mark.parametrize('status', ['OK', '20 OK', b'200 OK', '200 OK\r\nX: y', '099 x'])
def test_bad_status_lines(status):
    with pytest.raises(ResponseError):
        checkStatus(status)


@pytest.mark.parametrize('headers', [
    (('A', 'b'),), [('A', 'b', 'c')], [('A', b'b')], [('Bad Name', 'v')], [('A', 'x\r\ny')],
    [('Connection', 'close')], [('Transfer-Encoding', 'chunked')], [('A', 'caf\u00e9\u20ac')]])
def test_bad_headers(headers):
    with pytest.raises(ResponseError):
        checkHeaders(headers)


def test_good_status_and_headers():
    checkStatus('200 OK')
    checkStatus('404 ')
    checkHeaders([('Content-Type', 'text/plain'), ('X-Caf\u00e9'[:5], 'caf\u00e9')])


def test_start_response_twice_is_a_500():
    def app(environ, start_response):
        start_response('200 OK', [])
        start_response('200 OK', [])
        return [b'x']
    r = run(app)
    assert r.sent[0].startswith(b'500 ') and 'second time' in r.errors.getvalue()


def test_non_bytes_body_is_a_500():
    def app(environ, start_response):
        start_response('200 OK', [])
        return ['text']
    r = run(app)
    assert r.sent[0].startswith(b'500 ') and 'not bytes' in r.errors.getvalue()


def test_body_without_start_response_is_a_500():
    r = run(lambda environ, start_response: [b'x'])
    assert r.sent[0].startswith(b'500 ')


def test_base_environ():
    env = baseEnviron({'HTTPS': 'on'}, io.BytesIO(), sys.stderr)
    assert env['wsgi.url_scheme'] == 'https' and env['wsgi.version'] == (1, 0)
    assert env['wsgi.multiprocess'] and not env['wsgi.multithread']
    assert (env['SCRIPT_NAME'], env['PATH_INFO'], env['QUERY_STRING']) == ('', '', '')
