"""Arbitrary bytes at a running gateway never kill the worker (hypothesis)."""

import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gateways.conftest import address
from tests.support import fcgi_client as fc
from tests.support.fcgi_client import FastCGIClient, environFor

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def poke(addr, data):
    """Send ``data``, half-close, and read until the gateway closes; never hangs."""
    family = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
    with socket.socket(family) as s:
        s.settimeout(10)
        s.connect(addr)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        except (BrokenPipeError, ConnectionResetError):
            pass


# Mostly-valid FastCGI streams mutate better than pure noise.
records = st.builds(
    fc.record, st.integers(0, 13), st.integers(0, 3), st.binary(max_size=64),
    st.one_of(st.none(), st.integers(0, 255)))
valid_start = st.just(fc.record(fc.BEGIN_REQUEST, 1, b'\x00\x01\x01\x00\x00\x00\x00\x00'))
fcgi_streams = st.one_of(
    st.binary(max_size=512),
    st.lists(records, max_size=6).map(b''.join),
    st.tuples(valid_start, st.lists(records, max_size=6).map(b''.join)).map(b''.join))


@pytest.fixture
def fcgi(serve):
    proc, spec = serve('FastCGI', 'tests.gateways.apps:echo')
    return proc, address(spec)


@FUZZ
@given(data=fcgi_streams)
def test_fuzz_fastcgi_worker_survives(fcgi, data):
    proc, addr = fcgi
    poke(addr, data)
    assert proc.returncode is None
    with FastCGIClient(addr) as c:
        assert c.request(environFor('GET', '/ok')).status == 200


heads = st.one_of(
    st.binary(max_size=512),
    st.builds(lambda m, t, h, b: m + b' ' + t + b' HTTP/1.1\r\n' + h + b'\r\n' + b,
              st.sampled_from([b'GET', b'POST', b'HEAD', b'PUT', b'\x00']),
              st.binary(max_size=40), st.binary(max_size=200), st.binary(max_size=100)))


@pytest.fixture
def http(serve):
    proc, spec = serve('HTTP', 'tests.gateways.apps:echo', tcp=True,
                       options=['--read-timeout=2'])
    return proc, address(spec)


@FUZZ
@given(data=heads)
def test_fuzz_http_worker_survives(http, data):
    proc, addr = http
    poke(addr, data)
    assert proc.returncode is None
    with socket.create_connection(addr, timeout=10) as s:
        s.sendall(b'GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        reply = b''
        while chunk := s.recv(65536):
            reply += chunk
    assert reply.startswith(b'HTTP/1.1 200 ')
