"""An HTTP connection says whether it holds part of a request, before a hand-off."""

import socket

import pytest

from peak_lite.running.gateways.http_server import HTTPConnection

# Each test runs with the compiled loops (speedups.py) and with pure Python alone.
pytestmark = pytest.mark.usefixtures('speedupsOnAndOff')


def test_buffered_is_zero_between_requests_and_not_while_a_head_is_under_way():
    ours, theirs = socket.socketpair()
    try:
        conn = HTTPConnection(ours, worker=None)
        assert conn.buffered == 0
        conn.reader.feed(b'GET / HTTP/1.1\r\nHost: exam')     # half a head: nothing served yet
        assert conn.buffered
    finally:
        ours.close()
        theirs.close()
