"""The FastCGI gateway behind a real nginx: unix and TCP sockets, keep-conn on and off."""

import concurrent.futures
import hashlib
import http.client
import os
import urllib.request

import pytest

from tests.support.nginx import Nginx
from tests.support.procs import waitFor

pytestmark = [pytest.mark.nginx]

MATRIX = [pytest.param((tcp, keep), id=f"{'tcp' if tcp else 'unix'}-keepconn-{'on' if keep else 'off'}")
          for tcp in (False, True) for keep in (True, False)]


@pytest.fixture(params=MATRIX)
def stack(request, serve, tmp_path):
    """Start ``app`` behind nginx; returns the Nginx (its ``gateway`` attribute is the Proc)."""
    tcp, keep = request.param
    started = []

    def start(app):
        proc, spec = serve('FastCGI', app, tcp=tcp)
        nginx = Nginx(tmp_path, fastcgi_pass=spec, keep_conn=keep)
        nginx.start()
        nginx.gateway = proc
        started.append(nginx)
        return nginx
    yield start
    for nginx in started:
        nginx.stop()


def get(url, method='GET', data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_get_and_head(stack):
    nginx = stack('tests.gateways.apps:hello')
    status, headers, body = get(nginx.url + '/')
    assert (status, body) == (200, b'Hello, world!\n')
    status, headers, body = get(nginx.url + '/', method='HEAD')
    assert (status, body) == (200, b'')
    assert headers['Content-Length'] == '14'


def test_large_post_checksum(stack):
    nginx = stack('tests.gateways.apps:checksum')
    payload = os.urandom(5 * 1024 * 1024)
    status, _, body = get(nginx.url + '/upload', 'POST', payload,
                          {'Content-Type': 'application/octet-stream'})
    assert status == 200
    assert body == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}\n".encode()


def test_streaming_response(stack):
    nginx = stack('tests.gateways.apps:stream')
    status, _, body = get(nginx.url + '/stream')
    assert status == 200
    assert body == b''.join(f'line {i}\n'.encode() for i in range(100))


def test_app_exception_is_a_500_and_the_traceback_reaches_the_error_log(stack):
    nginx = stack('tests.gateways.apps:boom')
    status, _, body = get(nginx.url + '/boom')
    assert status == 500
    assert b'Internal Server Error' in body and b'RuntimeError' not in body
    waitFor(lambda: 'RuntimeError: boom' in nginx.errorLogText(), 10,
             message="the traceback in nginx's error log")
    assert 'FastCGI sent in stderr' in nginx.errorLogText()
    assert 'Traceback' in nginx.errorLogText()
    assert get(nginx.url + '/again')[0] == 500
    assert nginx.gateway.returncode is None


def test_200_concurrent_requests_none_lost(stack):
    nginx = stack('tests.gateways.apps:echo')

    def one(i):
        conn = http.client.HTTPConnection('127.0.0.1', nginx.port, timeout=60)
        try:
            conn.request('GET', f'/n/{i}')
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    with concurrent.futures.ThreadPoolExecutor(200) as pool:
        results = list(pool.map(one, range(200)))
    assert [s for s, _ in results] == [200] * 200
    for i, (_, body) in enumerate(results):
        assert f'path=/n/{i}\n'.encode() in body
