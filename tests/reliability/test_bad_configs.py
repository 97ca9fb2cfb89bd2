"""Malformed procman configs through the real ``peak procman``: one line, file:line, exit 2.

The corpus is the loader's (tests/procman/bad_configs/, each file's first line
says ``# expect: LINE: fragment``); here every file goes through the whole
command instead of ``loadConfig``, plus the cases only the file system can
make: a missing file, a directory, an unreadable file, an unwritable PidFile
directory (those two as an unprivileged user when the tests run as root).
"""

import os
import pathlib
import subprocess
import tempfile

import pytest

from tests.support.procman import peak_argv
from tests.support.procs import Proc

BAD_CONFIGS = pathlib.Path(__file__).parent.parent / 'procman' / 'bad_configs'
CORPUS = sorted(BAD_CONFIGS.glob('*.conf'))


def _expectation(path):
    header = path.read_bytes().split(b'\n', 1)[0].decode()
    line, fragment = header[len('# expect: '):].split(': ', 1)
    return int(line), fragment


def runProcman(path, *args, user=None, cwd=None, limits=()):
    """Run ``peak procman [args] path``; return (exit status, stdout, stderr).

    ``limits`` are prlimit(1) options (``'--nproc=16'``) set before the user switch.
    """
    argv = peak_argv('procman', *args, str(path))
    if user is not None:
        argv = ['setpriv', f'--reuid={user}', f'--regid={user}', '--clear-groups'] + argv
    if limits:
        argv = ['prlimit', *limits, '--'] + argv
    proc = Proc(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd or '/')
    try:
        out, err = proc.popen.communicate(timeout=60)
        return proc.returncode, out.decode(errors='replace'), err.decode(errors='replace')
    finally:
        proc.stop()


def assertOneLine(status, err, path, lineno, fragment=''):
    assert status == 2, (status, err)
    assert 'Traceback' not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert f'{path}:{lineno}: ' in lines[0], lines[0]
    assert fragment in lines[0], lines[0]


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 30


@pytest.mark.parametrize('path', CORPUS, ids=[p.stem for p in CORPUS])
@pytest.mark.parametrize('check', [False, True], ids=['run', 'check'])
def test_bad_config(path, check):
    lineno, fragment = _expectation(path)
    status, out, err = runProcman(path, *(['--check'] if check else []))
    assertOneLine(status, err, path, lineno, fragment)
    assert out == ''


def test_missing_file(tmp_path):
    path = tmp_path / 'nowhere.conf'
    status, _, err = runProcman(path)
    assertOneLine(status, err, path, 1, 'No such file')


def test_directory_instead_of_file(tmp_path):
    status, _, err = runProcman(tmp_path)
    assertOneLine(status, err, tmp_path, 1)


@pytest.fixture
def public_dir():
    """A directory an unprivileged user can enter; removed afterwards."""
    with tempfile.TemporaryDirectory(prefix='procman-rel-') as d:
        os.chmod(d, 0o755)
        yield pathlib.Path(d)
        for sub in pathlib.Path(d).iterdir():
            if sub.is_dir():
                sub.chmod(0o755)


def _unprivileged():
    return 65534 if os.geteuid() == 0 else None


def test_unreadable_file(public_dir):
    conf = public_dir / 'app.conf'
    conf.write_text('Command CGI tests.reliability.apps:sleepy\n')
    conf.chmod(0o000)
    if _unprivileged() is None and os.access(conf, os.R_OK):
        pytest.fail("this user can read a mode-000 file; run as root or an ordinary user")
    status, _, err = runProcman(conf, user=_unprivileged())
    assertOneLine(status, err, conf, 1, 'Permission denied')


def test_unwritable_pid_file_directory(public_dir):
    (public_dir / 'ro').mkdir(mode=0o555)
    (public_dir / 'ro').chmod(0o555)
    conf = public_dir / 'app.conf'
    conf.write_text('Command CGI tests.reliability.apps:sleepy\nPidFile ro/app.pid\n')
    conf.chmod(0o644)
    status, _, err = runProcman(conf, user=_unprivileged())
    assertOneLine(status, err, conf, 2, 'not writable')


def test_max_processes_above_the_process_limit(public_dir):
    conf = public_dir / 'app.conf'
    conf.write_text('Command CGI tests.reliability.apps:sleepy\nListen 127.0.0.1:0\n'
                    'MaxProcesses 64\n')
    conf.chmod(0o644)
    status, _, err = runProcman(conf, '--check', user=_unprivileged(), limits=['--nproc=16'])
    assertOneLine(status, err, conf, 3, 'not below the limit of 16 processes this user'
                                        ' may run (RLIMIT_NPROC')
    status, out, err = runProcman(conf, '--check', user=_unprivileged(), limits=['--nproc=65'])
    assert (status, 'configuration OK' in out) == (0, True), err
