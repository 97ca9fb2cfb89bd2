"""CGI mode: plain RFC 3875 requests, FastCGI on a listening fd 0, and libfcgi's cgi-fcgi."""

import hashlib
import os
import socket
import subprocess


from tests.gateways.conftest import launcher
from tests.support.fcgi_client import FastCGIClient, environFor
from tests.support.procs import waitFor

CGI_ENV = {'GATEWAY_INTERFACE': 'CGI/1.1', 'SERVER_PROTOCOL': 'HTTP/1.1',
           'SERVER_NAME': 'localhost', 'SERVER_PORT': '80', 'SCRIPT_NAME': '/cgi',
           'REMOTE_ADDR': '127.0.0.1'}


def runCGI(procs, app, method='GET', body=b'', path='/x', query=''):
    env = dict(CGI_ENV, REQUEST_METHOD=method, PATH_INFO=path, QUERY_STRING=query)
    if body:
        env.update(CONTENT_LENGTH=str(len(body)), CONTENT_TYPE='application/octet-stream')
    p = procs(launcher() + ['CGI', app], env=env, stdin=subprocess.PIPE,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.popen.communicate(body, timeout=30)
    return p.popen.returncode, out, err


def test_plain_cgi_request_with_a_body(procs):
    body = b'posted data ' * 1000
    code, out, err = runCGI(procs, 'tests.gateways.apps:echo', 'POST', body, '/p', 'a=b')
    assert code == 0, err
    head, _, payload = out.partition(b'\r\n\r\n')
    assert head.startswith(b'Status: 200 OK\r\n')
    assert b'Content-Type: text/plain' in head
    assert b'method=POST\npath=/p\nquery=a=b\n' in payload
    assert f'sha256={hashlib.sha256(body).hexdigest()}'.encode() in payload


def test_plain_cgi_app_error_is_a_500(procs):
    code, out, err = runCGI(procs, 'tests.gateways.apps:boom')
    assert out.startswith(b'Status: 500 ')
    assert b'RuntimeError: boom' in err


def test_plain_cgi_passes_the_validator(procs):
    code, out, err = runCGI(procs, 'tests.gateways.apps:validEcho', 'POST', b'abc')
    assert code == 0 and out.startswith(b'Status: 200 OK'), err


def test_cgi_on_a_listening_fd0_serves_fastcgi(procs, tmp_path):
    path = str(tmp_path / 'fd0.sock')
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(16)
    with listener:
        proc = procs(launcher() + ['CGI', 'tests.gateways.apps:echo'], stdin=listener)
    with FastCGIClient(path, timeout=15) as c:
        r = c.request(environFor('GET', '/fd0'))
    assert r.status == 200 and b'path=/fd0' in r.body
    assert proc.returncode is None


def test_cgi_fcgi_client_against_the_gateway(serve, tmp_path):
    proc, spec = serve('FastCGI', 'tests.gateways.apps:echo')
    body = os.urandom(300000)
    env = dict(os.environ, REQUEST_METHOD='POST', SCRIPT_NAME='', PATH_INFO='/via-libfcgi',
               QUERY_STRING='x=1', SERVER_NAME='localhost', SERVER_PORT='80',
               SERVER_PROTOCOL='HTTP/1.1', CONTENT_LENGTH=str(len(body)),
               CONTENT_TYPE='application/octet-stream')
    out = subprocess.run(['cgi-fcgi', '-bind', '-connect', spec[5:]], input=body, env=env,
                         capture_output=True, timeout=30, check=True).stdout
    assert out.startswith(b'Status: 200 OK\r\n')
    assert b'path=/via-libfcgi\nquery=x=1\n' in out
    assert f'sha256={hashlib.sha256(body).hexdigest()}'.encode() in out


def test_cgi_fcgi_start_hands_the_socket_on_fd0(procs, tmp_path):
    script = tmp_path / 'app.sh'
    script.write_text('#!/bin/sh\nexec ' + ' '.join(launcher())
                      + ' CGI tests.gateways.apps:pid\n')
    script.chmod(0o755)
    sock = str(tmp_path / 'started.sock')
    starter = procs(['cgi-fcgi', '-start', '-connect', sock, str(script)],
                    cwd=os.getcwd())
    waitFor(lambda: starter.returncode is not None, 15, message="cgi-fcgi -start to return")
    env = dict(os.environ, REQUEST_METHOD='GET', SCRIPT_NAME='', PATH_INFO='/',
               QUERY_STRING='', SERVER_NAME='localhost', SERVER_PORT='80',
               SERVER_PROTOCOL='HTTP/1.1')
    out = subprocess.run(['cgi-fcgi', '-bind', '-connect', sock], env=env,
                         capture_output=True, timeout=30, check=True).stdout
    assert out.startswith(b'Status: 200 OK\r\n')
    assert out.partition(b'\r\n\r\n')[2].isdigit()
