"""The files the manager trusts (pid file, StdErr, Semaphore), what a child that dropped
its privileges can still reach, and the scoreboard's clock and bad bytes."""

import os
import pwd
import shutil
import signal
import stat
import struct
import subprocess
import tempfile
import threading

import pytest

from tests.process.test_procman_control import peak
from tests.procman.scaling_apps import readBoard
from tests.support.procman import Procman
from tests.support.procs import pid_alive, wait_for

APP = 'CGI tests.procman.trust_apps:app'
FAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'
root = pytest.mark.skipif(os.getuid() != 0, reason="needs root, to switch to nobody")


@pytest.fixture
def opendir():
    """A directory a child running as nobody can traverse, as /var/log is."""
    path = tempfile.mkdtemp(prefix='peak-trust-')
    os.chmod(path, 0o711)
    yield path
    shutil.rmtree(path)


def _refused(pm, *words):
    """Start the manager; assert it exits 2, its last line naming the config file and line."""
    proc = pm.start(wait=False)
    assert proc.proc.wait(20) == 2, pm.failure()
    err = proc.proc.popen.stderr.read().decode()
    assert err.strip().splitlines()[-1].startswith(f"peak: {pm.path}:"), err
    assert 'Traceback' not in err, err
    for word in words:
        assert word in err, err
    return err


# -- the files the manager trusts -------------------------------------------

def test_fifo_at_stderr_is_refused_at_once(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP)
    os.mkfifo(pm.stderr)
    _refused(pm, 'StdErr', 'not a regular file')
    assert not os.path.exists(pm.pidfile)


def test_fifo_at_the_pid_file_is_refused(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP)
    os.mkfifo(pm.pidfile)
    _refused(pm, 'PidFile', 'not a regular file')


@root
def test_log_rotation_reaches_children_running_as_user(opendir, tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP, prefork=2, extra="User nobody")
    log = os.path.join(opendir, 'error_log')
    pm.stderr = log
    with open(pm.path) as f:
        pm.write(f.read().replace(f"StdErr {tmp_path}/error_log", f"StdErr {log}"))
    pm.start()
    kids = set(pm.children())
    os.rename(log, log + '.1')
    pm.signal(signal.SIGUSR1)
    marks = set()

    def reopened():
        r = pm.request('/log', QUERY_STRING=f'mark{len(marks)}')
        marks.add(int(r.body.split(b'=')[1]))
        try:
            with open(log) as f:     # the manager creates it once SIGUSR1 reaches its loop
                text = f.read()
        except FileNotFoundError:
            return False
        return kids <= {int(line.split()[-1]) for line in text.splitlines()
                        if line.startswith('mark')}
    wait_for(reopened, 10, message="both children writing to the new log file")
    assert os.stat(log).st_uid == pwd.getpwnam('nobody').pw_uid
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o640
    pm.stop()


def _ids(pid):
    try:
        with open(f'/proc/{pid}/status') as f:
            return {line.split(':')[0]: line.split()[1:] for line in f
                    if line.startswith(('Uid:', 'Gid:', 'Groups:'))}
    except OSError:
        return None