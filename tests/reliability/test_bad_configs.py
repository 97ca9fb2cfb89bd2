"""Malformed procman configs through the real ``peak procman``: one line, file:line, exit 2.

The corpus is the loader's (tests/procman/bad_configs/, each file's first line
says ``# expect: LINE: fragment``); here every file goes through the whole
command instead of ``loadConfig``, plus the cases only the file system can
make: a missing file, a directory, an unreadable file, an unwritable PidFile
directory (those two as an unprivileged user when the tests run as root).
"""

import os
import pathlib
import signal
import socket
import subprocess
import tempfile

import pytest

from tests.support.nginx import freePort
from tests.support.procman import Procman, peakArgv
from tests.support.procs import Proc, waitFor

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
    argv = peakArgv('procman', *args, str(path))
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
def publicDir():
    """A directory an unprivileged user can enter; removed afterwards."""
    with tempfile.TemporaryDirectory(prefix='procman-rel-') as d:
        os.chmod(d, 0o755)
        yield pathlib.Path(d)
        for sub in pathlib.Path(d).iterdir():
            if sub.is_dir():
                sub.chmod(0o755)


def _unprivileged():
    return 65534 if os.geteuid() == 0 else None


def test_unreadable_file(publicDir):
    conf = publicDir / 'app.conf'
    conf.write_text('Command CGI tests.reliability.apps:sleepy\n')
    conf.chmod(0o000)
    if _unprivileged() is None and os.access(conf, os.R_OK):
        pytest.fail("this user can read a mode-000 file; run as root or an ordinary user")
    status, _, err = runProcman(conf, user=_unprivileged())
    assertOneLine(status, err, conf, 1, 'Permission denied')


def test_unwritable_pid_file_directory(publicDir):
    (publicDir / 'ro').mkdir(mode=0o555)
    (publicDir / 'ro').chmod(0o555)
    conf = publicDir / 'app.conf'
    conf.write_text('Command CGI tests.reliability.apps:sleepy\nPidFile ro/app.pid\n')
    conf.chmod(0o644)
    status, _, err = runProcman(conf, user=_unprivileged())
    assertOneLine(status, err, conf, 2, 'not writable')


def test_max_processes_above_the_process_limit(publicDir):
    conf = publicDir / 'app.conf'
    conf.write_text('Command CGI tests.reliability.apps:sleepy\nListen 127.0.0.1:0\n'
                    'MaxProcesses 64\n')
    conf.chmod(0o644)
    status, _, err = runProcman(conf, '--check', user=_unprivileged(), limits=['--nproc=16'])
    assertOneLine(status, err, conf, 3, 'not below the limit of 16 processes this user'
                                        ' may run (RLIMIT_NPROC')
    status, out, err = runProcman(conf, '--check', user=_unprivileged(), limits=['--nproc=65'])
    assert (status, 'configuration OK' in out) == (0, True), err


# -- --check runs the checks startup runs, short of taking the resources -------

def _probeCase(case, tmp_path, busy):
    """(config text, line, fragment) of a config that start refuses in ``case``."""
    target = tmp_path / 'target'
    target.write_text('not ours\n')
    lines = ['Command CGI tests.reliability.apps:sleepy', 'Listen 127.0.0.1:0']
    if case == 'stderr-symlink':
        (tmp_path / 'err.log').symlink_to(target)
        lines.append('StdErr err.log')
        return lines, 3, 'StdErr'
    if case == 'pidfile-symlink':
        (tmp_path / 'app.pid').symlink_to(target)
        lines.append('PidFile app.pid')
        return lines, 3, 'PidFile'
    if case == 'unix-not-a-socket':
        lines[1] = f'Listen unix:{target}'
        return lines, 2, 'is not a socket'
    if case == 'unix-served-by-another':
        path = str(tmp_path / 'other.sock')
        other = socket.socket(socket.AF_UNIX)
        other.bind(path)
        other.listen()
        busy.unixServer = other     # closed with the fixture
        lines[1] = f'Listen unix:{path}'
        return lines, 2, 'another process is listening there'
    host, port = busy.getsockname()
    lines[1] = f'Listen {host}:{port}'
    return lines, 2, f'Listen {host}:{port}'


class _Busy:
    """A TCP port (and maybe a unix socket) some other server listens on."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen()
        self.unixServer = None

    def getsockname(self):
        return self.sock.getsockname()

    def close(self):
        self.sock.close()
        if self.unixServer is not None:
            self.unixServer.close()


@pytest.fixture
def busy():
    server = _Busy()
    yield server
    server.close()


@pytest.mark.parametrize('case', ['stderr-symlink', 'pidfile-symlink', 'busy-port',
                                  'unix-not-a-socket', 'unix-served-by-another'])
def test_check_refuses_what_start_refuses(tmp_path, busy, case):
    lines, lineno, fragment = _probeCase(case, tmp_path, busy)
    conf = tmp_path / 'app.conf'
    conf.write_text('\n'.join(lines) + '\n')
    status, out, err = runProcman(conf, '--check')
    assertOneLine(status, err, conf, lineno, fragment)
    assert out == ''
    # The real start refuses it at the same line, and the target is untouched.
    status, _, err = runProcman(conf)
    assert (status, f'{conf}:{lineno}: ' in err) == (2, True), err
    assert (tmp_path / 'target').read_text() == 'not ours\n'


@pytest.mark.parametrize('key', ['StdErr', 'PidFile'])
def test_check_refuses_a_fifo_without_hanging(tmp_path, key):
    os.mkfifo(tmp_path / 'fifo')
    conf = tmp_path / 'app.conf'
    conf.write_text(f'Command CGI tests.reliability.apps:sleepy\nListen 127.0.0.1:0\n'
                    f'{key} fifo\n')
    status, out, err = runProcman(conf, '--check')
    assertOneLine(status, err, conf, 3, f'{key} {tmp_path}/fifo: is not a regular file: remove it')


def test_check_passes_beside_the_manager_running_the_config(tmp_path, procs):
    """Its pid file is locked and its addresses are busy: by the manager that hands them on."""
    port = freePort()
    pm = Procman(tmp_path, procs, extra=f'Listen 127.0.0.1:{port}').start()
    try:
        status, out, err = runProcman(pm.path, '--check')
        assert (status, 'configuration OK' in out) == (0, True), err
    finally:
        pm.stop()


def test_reload_without_pid_file_passes_its_check(tmp_path, procs):
    """The reload's check recognises its addresses as the manager's (its parent's)."""
    port = freePort()
    pm = Procman(tmp_path, procs)
    pm.write(f'Command CGI tests.procman.apps:hello\nStdErr {pm.stderr}\n'
             f'Listen 127.0.0.1:{port}\nListen unix:{pm.socket}\nStopTimeout 5\n')
    pm.start(wait=False)
    first = pm.waitChildren(1)
    pm.signal(signal.SIGHUP)
    waitFor(lambda: 'restarting: exec' in pm.log() or 'restart refused' in pm.log(), 30,
             message='the outcome of the reload')
    assert 'restart refused' not in pm.log(), pm.log()
    waitFor(lambda: (set(pm.children()) - set(first)) or None, 30,
             message='a child of the new generation')
    pm.signal(signal.SIGTERM)
    assert pm.proc.wait(20) == 0, pm.failure()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
@pytest.mark.parametrize('key', ['StdErr', 'PidFile'])
@pytest.mark.parametrize('problem', ['owned-by-nobody', 'writable-by-others'])
def test_check_refuses_a_file_startup_would_not_trust(tmp_path, key, problem):
    path = tmp_path / 'file'
    path.write_text('not ours\n')
    if problem == 'owned-by-nobody':
        os.chown(path, 65534, 65534)
        fragment = f'{key} {path}: is owned by uid 65534'
    else:
        os.chmod(path, 0o666)
        fragment = f'{key} {path}: is writable by others'
    conf = tmp_path / 'app.conf'
    conf.write_text(f'Command CGI tests.reliability.apps:sleepy\nListen 127.0.0.1:0\n'
                    f'{key} file\n')
    status, out, err = runProcman(conf, '--check')
    assertOneLine(status, err, conf, 3, fragment)
    status, _, err = runProcman(conf)
    assert (status, f'{conf}:3: ' in err) == (2, True), err
    assert path.read_text() == 'not ours\n'
