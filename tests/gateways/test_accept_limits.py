"""The worker loop under descriptor exhaustion, silent peers and descriptors past 1024.

Each test runs the real ``peak FastCGI`` gateway under a given
``RLIMIT_NOFILE`` and opens real TCP connections to it.
"""

import os
import signal
import socket
import sys

import pytest

from tests.gateways.conftest import address, launcher
from tests.support.fcgi_client import FastCGIClient, environFor
from tests.support.nginx import freePort
from tests.support.procs import waitFor

LIMITED = ("import os, resource, sys; n = int(sys.argv[1]); "
           "resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); os.execv(sys.argv[2], sys.argv[2:])")


@pytest.fixture
def gateway(procs, tmp_path):
    """``gateway(nofile, *options)``: a FastCGI gateway on TCP; returns (proc, spec, log path)."""
    def start(nofile, *options):
        spec = f'127.0.0.1:{freePort()}'
        log = tmp_path / 'gateway.log'
        argv = [sys.executable, '-c', LIMITED, str(nofile)] + launcher()
        with open(log, 'wb') as err:
            p = procs(argv + ['FastCGI', *options, spec, 'tests.gateways.apps:hello'],
                      stderr=err)
        waitFor(lambda: _listening(spec) or p.returncode is not None, 15,
                 message=f"the gateway to listen on {spec}")
        assert p.returncode is None, log.read_text()
        return p, spec, log
    return start


def _listening(spec):
    try:
        socket.create_connection(address(spec), timeout=1).close()
        return True
    except OSError:
        return False


def _fds(pid):
    return len(os.listdir(f'/proc/{pid}/fd'))


def _cpu(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def _connectMany(spec, n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(address(spec))
        except BlockingIOError:
            pass
        socks.append(s)
    return socks


def test_out_of_descriptors_in_accept_pauses_instead_of_spinning(gateway):
    """RLIMIT_NOFILE 160 and 500 idle connections: the worker backs off, its log stays small.

    Before: every loop turn found the listener readable, accept() failed
    with EMFILE and logged it, and the worker burned a whole core.
    """
    proc, spec, log = gateway(160)
    socks = _connectMany(spec, 500)
    try:
        waitFor(lambda: _fds(proc.pid) >= 150, 10, message="the gateway to run out of fds")
        before = _cpu(proc.pid)
        deadline = os.times().elapsed + 3.0
        waitFor(lambda: os.times().elapsed >= deadline, 10, interval=0.1,
                 message="3 s to pass")
        burned = _cpu(proc.pid) - before
        text = log.read_text(errors='replace')
        lines = [line for line in text.splitlines() if 'accept()' in line]
        assert burned < 0.5, f"the worker used {burned:.2f} s of CPU in 3 s"
        assert 1 <= len(lines) <= 2, text[-2000:]
        assert 'Too many open files' in lines[0]
        assert 'Traceback' not in text
    finally:
        for s in socks:
            s.close()
    # Once the peers are gone the worker accepts and serves again.
    waitFor(lambda: _fds(proc.pid) < 100, 10, message="the gateway to close what it held")
    with FastCGIClient(address(spec), timeout=10) as c:
        response = c.request(environFor('GET', '/')).parse()
    assert (response.status, response.body) == (200, b'Hello, world!\n')


def test_a_connection_that_never_sends_a_byte_times_out(gateway):
    """A peer that connects and stays silent is closed after the read timeout.

    Before: a FastCGI worker kept it for ever, so silent connections could
    use up every descriptor.
    """
    proc, spec, log = gateway(1024, '--read-timeout', '1')
    with socket.create_connection(address(spec), timeout=10) as s:
        assert s.recv(1) == b''     # closed by the gateway, within the timeout


def test_a_graceful_stop_with_descriptors_past_1024(gateway):
    """SIGHUP while the worker holds more than 1024 connections: a clean drain, exit 0.

    Before: drain() used select(), which raises ValueError for fds >= 1024.
    """
    proc, spec, log = gateway(4096)
    socks = _connectMany(spec, 1100)
    try:
        waitFor(lambda: _fds(proc.pid) > 1060, 15, message="the gateway to accept them")
        proc.signal(signal.SIGHUP)
        assert proc.wait(15) == 0, log.read_text()[-2000:]
        assert 'Traceback' not in log.read_text()
    finally:
        for s in socks:
            s.close()
