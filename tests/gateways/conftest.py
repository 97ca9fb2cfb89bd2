import os
import socket
import sys

import pytest

from peak_lite.running.gateways import speedups
from tests.support.nginx import freePort
from tests.support.procs import waitFor

PEAK = os.path.join(os.path.dirname(sys.executable), 'peak')


def launcher():
    """The real `peak` command; ``PEAK_GATEWAY_LAUNCHER=module`` (or no commands layer yet)
    runs the shortcuts through tests.gateways.apps instead."""
    try:
        import peak_lite.running.commands  # noqa: F401
        have_commands = True
    except ImportError:
        have_commands = False
    if os.environ.get('PEAK_GATEWAY_LAUNCHER') == 'module' or not have_commands:
        return [sys.executable, '-m', 'tests.gateways.apps']
    return [PEAK]


def connectable(spec):
    if spec.startswith('unix:'):
        s = socket.socket(socket.AF_UNIX)
        address = spec[5:]
    else:
        host, _, port = spec.rpartition(':')
        s = socket.socket()
        address = (host, int(port))
    try:
        s.connect(address)
        return True
    except OSError:
        return False
    finally:
        s.close()


def address(spec):
    if spec.startswith('unix:'):
        return spec[5:]
    host, _, port = spec.rpartition(':')
    return host, int(port)


@pytest.fixture
def serve(procs, tmp_path):
    """``serve(protocol, app, tcp=False, options=())`` starts a gateway process; returns (proc, spec)."""
    def start(protocol, app, tcp=False, options=(), **kw):
        spec = f'127.0.0.1:{freePort()}' if tcp else f'unix:{tmp_path}/app-{protocol}.sock'
        p = procs(launcher() + [protocol, *options, spec, app], **kw)
        waitFor(lambda: connectable(spec) or p.returncode is not None, 15,
                 message=f"{protocol} gateway to listen on {spec}")
        assert p.returncode is None, f"the gateway exited with {p.returncode}"
        return p, spec
    return start


@pytest.fixture(params=['compiled', 'python'])
def speedupsOnAndOff(request, monkeypatch):
    """Run a test with the compiled loops (speedups.py) and again with pure Python alone,
    in this process and in the gateways it starts."""
    if request.param == 'python':
        monkeypatch.setattr(speedups, 'compiled', None)
        monkeypatch.setenv('PEAK_LITE_PURE_PYTHON', '1')
    return request.param
