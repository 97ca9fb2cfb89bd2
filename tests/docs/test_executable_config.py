"""The documented executable-config forms, run by the kernel as ``./app.conf``.

The kernel does no PATH lookup for a ``#!`` interpreter, so PEAK's short
``#!invoke peak procman`` can never run; the docs show
``#!/usr/bin/env -S peak procman`` and ``#!/venv/bin/invoke peak procman``.
"""

import os
import shutil
import signal
import subprocess

import pytest

from tests.docs.runners import httpGet, scriptsBin
from tests.docs.snippets import DOCS, ROOT
from tests.support.nginx import freePort
from tests.support.procman import Procman
from tests.support.procs import waitFor

BIN = scriptsBin()
needsScripts = pytest.mark.skipif(BIN is None,
                                  reason="needs the installed peak and invoke scripts")


def runExecutable(pm, shebang, *args, env=None):
    """Make pm's config executable with ``shebang``, run it as ./NAME, wait until it serves."""
    with open(pm.path) as f:
        text = f.read()
    pm.write(f"#!{shebang}\n{text}")
    os.chmod(pm.path, 0o755)
    env = {'PATH': f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    pm.proc = pm.procs([f'./{os.path.basename(pm.path)}', *args], env={**pm.env, **env},
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(pm.dir))
    pm.pid = pm.proc.pid       # env and invoke exec: the manager keeps the pid
    waitFor(lambda: pm.readPid() == pm.pid or pm.proc.returncode is not None, 20,
             message="the manager's pid file")
    assert pm.proc.returncode is None, pm.failure()
    pm.waitChildren(1)
    assert pm.request('/').status == 200
    return pm


@needsScripts
def test_env_dash_S_shebang_serves(tmp_path, procs):
    pm = runExecutable(Procman(tmp_path, procs), '/usr/bin/env -S peak procman')
    pm.stop()


@needsScripts
def test_invoke_shebang_by_absolute_path_serves_without_the_venv_on_PATH(tmp_path, procs):
    # For an env without -S: the kernel runs invoke, which finds `peak`
    # beside itself first, so neither cron's nor systemd's PATH matters.
    pm = runExecutable(Procman(tmp_path, procs), f'{BIN}/invoke peak procman',
                       env={'PATH': '/usr/bin:/bin'})
    pm.stop()


@needsScripts
def test_words_after_the_file_are_appended_to_Command(tmp_path, procs):
    pm = Procman(tmp_path, procs, command='CGI --read-timeout 5')
    runExecutable(pm, '/usr/bin/env -S peak procman', 'tests.procman.apps:hello')
    pm.stop()


@needsScripts
def test_gateway_options_appended_after_the_app_spec(tmp_path, procs):
    pm = Procman(tmp_path, procs, command='CGI tests.procman.apps:hello')
    runExecutable(pm, '/usr/bin/env -S peak procman', '--read-timeout', '5')
    pm.stop()


@needsScripts
def test_the_demo_runs_as_an_executable(tmp_path, procs):
    examples = tmp_path / 'examples'
    shutil.copytree(ROOT / 'examples', examples,
                    ignore=shutil.ignore_patterns('var', '__pycache__'))
    (examples / 'var').mkdir()
    port = freePort()
    conf = examples / 'demo.conf'
    conf.write_text(conf.read_text().replace('127.0.0.1:8080', f'127.0.0.1:{port}'))
    conf.chmod(0o755)
    proc = procs(['./demo.conf'], cwd=str(examples), stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE,
                 env={'PATH': f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})

    def serving():
        if proc.returncode is not None:
            return 'exited'
        try:
            return httpGet(port, '/visits', 2.0)
        except OSError:
            return False
    seen = waitFor(serving, 30, message="./demo.conf to serve")
    assert seen != 'exited', proc.popen.communicate(timeout=10)
    status, body = seen
    assert status == 200 and body.startswith('visit 1 ')
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_docs_show_no_shebang_the_kernel_cannot_run():
    for path in [*DOCS, *sorted((ROOT / 'examples').iterdir())]:
        if path.is_file():
            for n, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
                assert not line.lstrip().startswith('#!invoke '), \
                    f"{path}:{n}: the kernel cannot find `invoke` on PATH; show" \
                    f" #!/usr/bin/env -S peak ... or #!/path/to/venv/bin/invoke peak ..."
