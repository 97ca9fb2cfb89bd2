"""CGI mode on handed-over sockets: every listener in PEAK_LISTEN_FDS, FastCGI or HTTP by first byte,
and SIGTERM aborting the request in progress."""

import http.client
import signal
import socket
import time

from tests.gateways.conftest import launcher
from tests.support.fcgi_client import FastCGIClient, environFor
from tests.support.procs import waitFor


def unixListener(path):
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(16)
    return s


def tcpListener():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    s.listen(16)
    return s


def test_every_handed_over_socket_serves_both_protocols(procs, tmp_path):
    path = str(tmp_path / 'fd0.sock')
    first, second = unixListener(path), tcpListener()
    port = second.getsockname()[1]
    # As procman hands them over: the first on fd 0, the others listed in PEAK_LISTEN_FDS.
    fd = second.fileno()
    with first, second:
        proc = procs(launcher() + ['CGI', 'tests.gateways.apps:echo'], stdin=first,
                     pass_fds=(fd,), env={'PEAK_LISTEN_FDS': f'0,{fd}'})
    with FastCGIClient(path, timeout=15) as c:                  # FastCGI on fd 0
        r = c.request(environFor('GET', '/fcgi'))
    assert r.status == 200 and b'path=/fcgi' in r.body
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=15)   # HTTP, 2nd socket
    for n in range(3):                                         # kept alive across requests
        conn.request('GET', f'/http{n}')
        resp = conn.getresponse()
        assert resp.status == 200 and f'path=/http{n}'.encode() in resp.read()
    conn.close()
    with FastCGIClient(('127.0.0.1', port), timeout=15) as c:  # FastCGI there too
        assert c.request(environFor('GET', '/both')).status == 200
    assert proc.returncode is None


def test_sigterm_aborts_the_request_in_progress(procs, tmp_path):
    path, mark = str(tmp_path / 'fd0.sock'), tmp_path / 'started'
    listener = unixListener(path)
    with listener:
        proc = procs(launcher() + ['CGI', 'tests.gateways.apps:marked'], stdin=listener)
    client = FastCGIClient(path, timeout=30)
    client.sendRequest(environFor('GET', '/', query='60', HTTP_X_MARK=str(mark)))
    waitFor(mark.exists, 10, message="the worker to start the 60 s request")
    started = time.monotonic()
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert time.monotonic() - started < 5, "SIGTERM waited for the request to finish"
    assert client.readRecord() is None       # no response: the connection was closed
    client.close()
