"""A worker's CPU per request: HTTP keep-alive against FastCGI keep-conn, in one run.

Both gateways serve the hello page on a unix socket, and one client sends the
same requests a web server in front would: nginx's ``proxy_pass`` headers
over HTTP, nginx's ``fastcgi_params`` over FastCGI, each on one kept-alive
connection.  The figure is the gateway process's own CPU time (every thread,
from ``/proc/PID/task/*/schedstat``) over a few thousand requests: the
client's time is not in it.  Rounds alternate between the two, and each
side keeps its best round, so a burst of load from elsewhere on the machine
does not decide the ratio.

The client and both gateways run on one CPU.  Where the scheduler puts them
otherwise decides the figure more than the gateway does: on this kind of
virtual machine a wakeup across CPUs costs the woken process some 35 µs
more per request, and which of the two gateways lands next to the client
changes from run to run.
"""

import os
import socket

import pytest

from tests.gateways.conftest import address
from tests.support import fcgi_client as fc

REQUESTS = 1000
ROUNDS = 8
RATIO = 1.2

HTTP_REQUEST = (b'GET /hello?x=1 HTTP/1.1\r\nHost: localhost\r\n'
                b'X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n'
                b'User-Agent: wrk/4.2\r\nAccept: */*\r\n\r\n')

FCGI_PARAMS = {
    'QUERY_STRING': 'x=1', 'REQUEST_METHOD': 'GET', 'CONTENT_TYPE': '',
    'CONTENT_LENGTH': '', 'SCRIPT_NAME': '', 'PATH_INFO': '/hello',
    'REQUEST_URI': '/hello?x=1', 'SERVER_PROTOCOL': 'HTTP/1.1', 'REQUEST_SCHEME': 'http',
    'GATEWAY_INTERFACE': 'CGI/1.1', 'SERVER_SOFTWARE': 'nginx/1.22.1',
    'REMOTE_ADDR': '127.0.0.1', 'REMOTE_PORT': '40000', 'SERVER_ADDR': '127.0.0.1',
    'SERVER_PORT': '8080', 'SERVER_NAME': 'localhost', 'HTTP_HOST': 'localhost',
    'HTTP_USER_AGENT': 'wrk/4.2', 'HTTP_ACCEPT': '*/*',
}
FCGI_REQUEST = (fc.record(fc.BEGIN_REQUEST, 1, bytes((0, fc.RESPONDER, fc.KEEP_CONN)) + b'\0' * 5)
                + fc.stream(fc.PARAMS, 1, fc.nameValues(FCGI_PARAMS))
                + fc.record(fc.STDIN, 1))


def cpuNs(pid):
    """CPU time of every thread of ``pid``, in nanoseconds."""
    total = 0
    for tid in os.listdir(f'/proc/{pid}/task'):
        with open(f'/proc/{pid}/task/{tid}/schedstat') as f:
            total += int(f.read().split()[0])
    return total


class Client:
    """One kept-alive connection sending ``request`` and reading one whole response each time."""

    def __init__(self, path, request, ends):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.request = request
        self.size = None
        self.ends = ends

    def first(self):
        """Send one request and learn the (constant) size of its response."""
        self.sock.sendall(self.request)
        data = b''
        while not data.endswith(self.ends):
            chunk = self.sock.recv(65536)
            assert chunk, f"the server closed the connection after {data!r}"
            data += chunk
        self.size = len(data)
        return data

    def many(self, n):
        sock, request, size = self.sock, self.request, self.size
        for _ in range(n):
            sock.sendall(request)
            got = 0
            while got < size:
                chunk = sock.recv(65536)
                assert chunk, "the server closed a kept-alive connection"
                got += len(chunk)
            assert got == size


@pytest.fixture
def oneCpu():
    """Run this test's process on one CPU (restored after); returns that CPU's set."""
    before = os.sched_getaffinity(0)
    cpu = {min(before)}
    os.sched_setaffinity(0, cpu)
    yield cpu
    os.sched_setaffinity(0, before)


def test_http_costs_the_worker_at_most_1_2_times_fastcgi(serve, oneCpu):
    http, httpSpec = serve('HTTP', 'tests.gateways.apps:hello')
    fcgi, fcgiSpec = serve('FastCGI', 'tests.gateways.apps:hello')
    for proc in (http, fcgi):
        # The gateways were started from this process, so on its CPU already;
        # their every thread is pinned again in case one was made before.
        for tid in os.listdir(f'/proc/{proc.pid}/task'):
            os.sched_setaffinity(int(tid), oneCpu)
    # The hello page ends both responses: FastCGI's with an END_REQUEST record.
    httpClient = Client(address(httpSpec), HTTP_REQUEST, b'Hello, world!\n')
    fcgiClient = Client(address(fcgiSpec), FCGI_REQUEST,
                        fc.record(fc.END_REQUEST, 1, b'\0' * 8))
    assert httpClient.first().startswith(b'HTTP/1.1 200 ')
    assert b'Hello, world!' in fcgiClient.first()
    best = {'HTTP': [], 'FastCGI': []}
    for _ in range(ROUNDS):
        for name, proc, client in (('HTTP', http, httpClient), ('FastCGI', fcgi, fcgiClient)):
            client.many(200)        # warm up: caches, the allocator
            before = cpuNs(proc.pid)
            client.many(REQUESTS)
            best[name].append((cpuNs(proc.pid) - before) / REQUESTS / 1000)
    httpUs, fcgiUs = min(best['HTTP']), min(best['FastCGI'])
    print(f"\nworker CPU per request: HTTP keep-alive {httpUs:.1f} µs, FastCGI keep-conn "
          f"{fcgiUs:.1f} µs, ratio {httpUs / fcgiUs:.2f} (rounds: {best})")
    httpClient.sock.close()
    fcgiClient.sock.close()
    assert httpUs <= RATIO * fcgiUs, (
        f"HTTP costs the worker {httpUs:.1f} µs per request, FastCGI {fcgiUs:.1f} µs: "
        f"more than {RATIO}×")
