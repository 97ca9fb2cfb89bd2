"""README's first two commands: `make run` serves the demo, `make test` runs pytest."""

import os
import stat
import subprocess

import pytest

from tests.docs.snippets import ROOT
from tests.support.procs import VENV_BIN


def test_make_run_serves_the_demo_on_both_listeners(demo):
    status, body = demo.get('/')
    assert status == 200 and 'greetings were preloaded by manager' in body
    status, body = demo.get('/visits')
    assert status == 200 and body.startswith('visit 1 recorded by worker ')
    assert demo.get('/nope')[0] == 404
    # nginx's workers run as another user: the socket and its directory let them in.
    assert stat.S_IMODE(os.stat(demo.socket).st_mode) == 0o666
    assert stat.S_IMODE(os.stat(demo.var).st_mode) == 0o755


def test_make_test_runs_the_suite_with_pytest_args(procs):
    if os.path.realpath(VENV_BIN) != os.path.realpath(ROOT / '.venv' / 'bin'):
        pytest.skip("the suite runs outside the project's .venv")
    # -o: never reinstall into the virtualenv this very test runs from.
    proc = procs(['make', '-o', '.venv/.installed', 'test',
                  'PYTEST_ARGS=-q -p no:randomly tests/docs/test_snippets.py -k extract'],
                 cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.popen.communicate(timeout=100)[0].decode()
    assert proc.popen.returncode == 0, out
    assert ' passed' in out and 'failed' not in out
