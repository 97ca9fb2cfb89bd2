"""The compiled loops (speedups.py) give the pure-Python answer, or leave the input to it.

Each compiled function answers only for input the Python code accepts; for
anything else it returns None or False and the Python code raises its error.
These properties compare the two on well-formed, cut and random input.
"""

import gc
import os
import struct
import subprocess
import sys
import weakref

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peak_lite.running.gateways import fcgi_protocol as fp
from peak_lite.running.gateways import speedups
from peak_lite.running.gateways.interfaces import ProtocolError
from peak_lite.running.gateways.http_parse import (
    _WATCHED, FieldLines, Request, RequestReader, _environKey, fieldsOf)
from peak_lite.running.gateways.http_server import HTTPResponse
from peak_lite.running.gateways.wsgi import ResponseError, checkHeaders, checkStatus, headLines

COMPILED = speedups.compiled


def test_the_compiled_loops_are_built():
    assert COMPILED is not None, (
        "peak_lite.running.gateways._speedups was not built: install a C compiler and "
        "Python's headers (apt-get install gcc python3-dev), then rm .venv/.installed; make test")


def pythonOnly(function, *args, errors=()):
    """``function(*args)`` with the compiled loops switched off; None if it raises ``errors``."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(speedups, 'compiled', None)
        try:
            return function(*args)
        except errors:
            return None


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.binary(max_size=64),
    st.lists(st.tuples(st.binary(max_size=140), st.binary(max_size=300)), max_size=6).map(
        fp.encodeNameValues),
    st.tuples(st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=200)), max_size=4),
              st.integers(1, 50)).map(lambda t: fp.encodeNameValues(t[0])[:-t[1]])),
    st.integers(0, 5))
def test_params_are_python_s_or_left_to_it(data, maxPairs):
    expected = pythonOnly(fp.decodeParams, data, maxPairs, errors=ProtocolError)
    assert COMPILED.splitParams(data, maxPairs) == expected
    assert COMPILED.splitParams(bytearray(data), maxPairs) == expected


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.binary(max_size=120),
    st.lists(st.tuples(st.integers(1, 11), st.integers(0, 0xFFFF), st.binary(max_size=40)),
             max_size=5).map(lambda rs: b''.join(fp.encodeRecord(*r) for r in rs))),
    st.integers(0, 30))
def test_records_are_python_s(data, cut):
    data = data[:len(data) - cut] if cut < len(data) else data
    assert COMPILED.splitRecords(data) == fp._splitRecords(data)
    assert COMPILED.splitRecords(bytearray(data)) == fp._splitRecords(bytearray(data))


NAMES = st.one_of(
    st.sampled_from(['Content-Type', 'content-length', 'CONTENT-LENGTH', 'Connection',
                     'keep-Alive', 'TE', 'Trailers', 'Upgrade', 'Transfer-Encoding',
                     'Proxy-Authenticate', 'proxy-authorization', 'X-A_b', 'T', 'Set-Cookie']),
    st.text(st.characters(max_codepoint=0x130), max_size=16),
    # The edges of a token: its punctuation, and what sits next to it.
    st.text(st.sampled_from('aZ09!~|`^_-.\x00 "(),/:;<=>?@[\\]{}\x7f\xe9\u0130'),
            min_size=1, max_size=4))
VALUES = st.one_of(
    st.sampled_from(['', '0', '12', '1 2', '-1', 'text/html; charset=utf-8', 'a\tb', 'caf\xe9']),
    st.text(st.characters(max_codepoint=0x180), max_size=20),
    # The edges of a field value: tab, the other controls, DEL, latin-1, beyond.
    st.text(st.sampled_from('a 0\t\x00\x08\n\r\x1f\x7f\x80\xff\u0100'), max_size=4))
HEADER = st.one_of(st.tuples(NAMES, VALUES),
                   st.tuples(NAMES, st.binary(max_size=3)),
                   st.tuples(NAMES, VALUES, VALUES),
                   st.lists(VALUES, max_size=2))


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.lists(HEADER, max_size=4), st.lists(HEADER, max_size=2).map(tuple)))
def test_headers_pass_only_where_python_passes_them(headers):
    accepted = pythonOnly(lambda h: checkHeaders(h) or True, headers, errors=ResponseError)
    assert COMPILED.headersValid(headers) is bool(accepted)


def test_every_character_in_a_name_and_in_a_value():
    for char in [chr(c) for c in range(0x100)] + ['\u0100', '\u20ac', '\U0001f600']:
        for headers in ([('X' + char, 'v')], [(char, 'v')], [('X', 'v' + char)],
                        [('Content-Length', '1' + char)], [('Connection' + char, 'v')]):
            accepted = pythonOnly(lambda h: checkHeaders(h) or True, headers,
                                  errors=ResponseError)
            assert COMPILED.headersValid(headers) is bool(accepted), headers


STATUSES = st.one_of(
    st.sampled_from(['200 OK', '404 ', '599 x', '099 x', '20 OK', '200OK', '200 a\rb', '200 \0',
                     '200 caf\xe9', '200 \u20ac', '1000 x', 'abc ', '204 No Content',
                     '304 Not Modified', '100 Continue', '199 x', '600 x', '205 x', '404 x']),
    st.text(st.sampled_from('0129 a\r\n\0\xe9\u20ac'), max_size=6),
    st.binary(max_size=5))


@settings(max_examples=1000, deadline=None)
@given(STATUSES)
def test_statuses_pass_only_where_python_passes_them(status):
    accepted = pythonOnly(lambda s: checkStatus(s) or True, status, errors=ResponseError)
    assert COMPILED.statusValid(status) is bool(accepted)


def latin1(text):
    return type(text) is str and max(text, default='\0') <= '\xff'


def plainHeaders(headers):
    """What start_response passes on: a list of pairs of latin-1 str."""
    return type(headers) is list and all(
        type(h) is tuple and len(h) == 2 and latin1(h[0]) and latin1(h[1]) for h in headers)


LENGTHS = st.one_of(st.integers(0, 10 ** 20).map(str), st.sampled_from(['', '1x', '007', ' 1']))
RESPONSE_HEADERS = st.lists(st.one_of(
    HEADER, st.tuples(st.sampled_from(['Content-Length', 'content-length']), LENGTHS)),
    max_size=4)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(RESPONSE_HEADERS, st.lists(HEADER, max_size=2).map(tuple)), st.booleans())
def test_head_lines_are_python_s_or_left_to_it(headers, dropContentLength):
    found = COMPILED.headLines(headers, dropContentLength)
    expected = pythonOnly(headLines, headers, dropContentLength, errors=(Exception,))
    if found is not None:
        assert found == expected
    lengths = {v for n, v in headers if n.lower() == 'content-length'} if plainHeaders(
        headers) else None
    if lengths is not None and all(v.isdigit() and v.isascii() and len(v) <= 18
                                   for v in lengths) and len({int(v) for v in lengths}) <= 1:
        assert found is not None, "the common case is compiled"


class Conn:
    """What HTTPResponse.frameHead asks of its connection."""

    class worker:
        stopping = False

    def canKeepBody(self, response):
        return True


def pythonHead(status, headers, body, close):
    request = Request()
    request.method, request.version, request.keepAlive = 'GET', '1.1', not close
    response = HTTPResponse(None, {}, Conn(), request, None)
    return response.frameHead(status, headers, body), response._mode, response._left


@settings(max_examples=1000, deadline=None)
@given(STATUSES, RESPONSE_HEADERS,
       st.one_of(st.none(), st.lists(st.binary(max_size=20), max_size=3),
                 st.lists(st.text(max_size=2), max_size=1)),
       st.booleans())
def test_http_heads_are_python_s_or_left_to_it(status, headers, body, close):
    found = COMPILED.httpHead(status, headers, body, close)
    if found is not None:
        head, declared = found
        assert pythonOnly(pythonHead, status, headers, body, close) == (head, 'length', declared)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(
    st.sampled_from([b'Host', b'host', b'X-A', b'X_A', b'Content-Length', b'Accept', b'te',
                     b'Transfer-Encoding', b'Expect', b'Content-Type']),
    st.binary(max_size=8).map(lambda v: v + b' \t'[:len(v) % 3])), max_size=6))
def test_fields_are_python_s(pairs):
    raw = [x for pair in pairs for x in pair]
    keys = {}
    assert COMPILED.fieldsOf(list(raw), keys, _environKey, _WATCHED) == fieldsOf(
        list(raw), {}, _environKey, _WATCHED)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=30), st.binary(max_size=60)), max_size=8),
       st.integers(0, 40))
def test_field_lines_keep_and_bound_as_python_does(pairs, start):
    def tooBig(*args):
        raise OverflowError(args)
    lines = [FieldLines(60, 5, 200, tooBig), COMPILED.FieldLines(60, 5, 200, tooBig)]
    outcomes = []
    for fieldLines in lines:
        fieldLines.size = start
        outcome = []
        for name, value in pairs:
            try:
                fieldLines.add(name, value)
            except OverflowError as e:
                outcome.append(e.args)
                break
        outcome.append((fieldLines.size, fieldLines.take(), fieldLines.size, fieldLines.take()))
        outcomes.append(outcome)
    assert outcomes[0] == outcomes[1]


def test_the_environment_can_leave_the_compiled_loops_unused():
    code = "from peak_lite.running.gateways import speedups; print(speedups.compiled)"
    env = dict(os.environ, PEAK_LITE_PURE_PYTHON='1')
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                         check=True, timeout=30)
    assert out.stdout.strip() == 'None'


@settings(max_examples=500, deadline=None)
@given(st.integers(-1, 0x10000), st.binary(max_size=70), st.integers(-1, 2 ** 32))
def test_last_output_is_python_s_or_left_to_it(requestId, data, appStatus):
    out = COMPILED.lastOutput(requestId, data, appStatus)
    expected = pythonOnly(fp.encodeLastOutput, requestId, data, appStatus, errors=struct.error)
    assert out == expected
    assert COMPILED.lastOutput(1, b'x' * 0x10000, 0) is None       # past one record: Python's


def test_every_character_in_every_place_of_a_status():
    for char in [chr(c) for c in range(0x100)] + ['\u20ac', '\U0001f600']:
        for status in (char + '00 OK', '2' + char + '0 OK', '20' + char + ' OK',
                       '200' + char + 'OK', '200 ' + char, '200 O' + char + 'K'):
            accepted = pythonOnly(lambda s: checkStatus(s) or True, status,
                                  errors=ResponseError)
            assert COMPILED.statusValid(status) is bool(accepted), status


def test_http_heads_of_every_kind_of_status():
    for code in (100, 199, 200, 201, 204, 205, 206, 301, 304, 404, 500, 599, 600, 999):
        for headers in ([('Content-Length', '5')], [('Content-Type', 'a'), ('content-length', '0')],
                        [('X', 'y')], [('Content-Length', '5'), ('Content-Length', '5')]):
            for body in (None, [b'abcde'], [b'ab', b'cde'], [], [b'abc']):
                for close in (False, True):
                    found = COMPILED.httpHead(f'{code} Reason', headers, body, close)
                    if found is not None:
                        assert pythonOnly(pythonHead, f'{code} Reason', headers, body, close) \
                            == (found[0], 'length', found[1]), (code, headers, body, close)
    assert COMPILED.httpHead('200 OK', [('Content-Length', '5')], [b'abcde'], False) is not None


def test_a_reader_and_its_field_lines_are_collected():
    # The reader holds its FieldLines, which calls back into the reader: a cycle
    # the collector must be able to see through, or every connection leaks one.
    reader = RequestReader()
    reader.feed(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    gone = weakref.ref(reader)
    del reader
    gc.collect()
    assert gone() is None
    blank = COMPILED.FieldLines.__new__(COMPILED.FieldLines)
    with pytest.raises(ValueError, match='not initialised'):
        blank.add(b'a', b'b')
