"""The project installs into a fresh virtualenv and its console scripts run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pip_install_into_fresh_venv(tmp_path):
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    bin_ = venv / 'bin'
    src = tmp_path / 'src'
    # Install from a copy, so no build artefact lands in the working tree.
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes((ROOT / name).read_bytes())
    subprocess.run([str(bin_ / 'pip'), 'install', '-q', str(src)], check=True,
                   capture_output=True)
    env = dict(os.environ, PATH=f"{bin_}{os.pathsep}{os.environ['PATH']}")
    env.pop('PYTHONPATH', None)
    help_ = subprocess.run([str(bin_ / 'peak'), '--help'], capture_output=True, text=True,
                           env=env, cwd=tmp_path, timeout=60)
    assert help_.returncode == 0, help_.stderr
    assert 'runIni' in help_.stdout and 'procman' in help_.stdout
    inv = subprocess.run([str(bin_ / 'invoke'), 'echo hello world', 'extra'],
                         capture_output=True, text=True, env=env, timeout=60)
    assert (inv.returncode, inv.stdout) == (0, 'hello world extra\n')
    bad = subprocess.run([str(bin_ / 'invoke')], capture_output=True, text=True, env=env,
                         timeout=60)
    assert bad.returncode == 2 and 'usage: invoke' in bad.stderr
