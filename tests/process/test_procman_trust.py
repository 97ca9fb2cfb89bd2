"""The files the manager trusts (pid file, StdErr, Semaphore), what a child that dropped
its privileges can still reach, and the scoreboard's clock and bad bytes."""

import os
import pwd
import shutil
import signal
import stat
import struct
import tempfile
import threading

import pytest

from tests.process.test_procman_control import peak
from tests.procman.scaling_apps import readBoard
from tests.support.procman import Procman
from tests.support.procs import waitFor

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
def test_files_owned_by_another_user_are_refused(tmp_path, procs):
    nobody = pwd.getpwnam('nobody').pw_uid
    for attr, key in (('pidfile', 'PidFile'), ('stderr', 'StdErr'), ('scoreboard', 'Semaphore')):
        pm = Procman(tmp_path, procs, command=APP)
        path = getattr(pm, attr)
        with open(path, 'wb'):
            pass
        os.chown(path, nobody, -1)
        _refused(pm, key, f'owned by uid {nobody}')
        os.unlink(path)


def test_files_writable_by_others_are_refused(tmp_path, procs):
    for attr, key in (('pidfile', 'PidFile'), ('stderr', 'StdErr'), ('scoreboard', 'Semaphore')):
        pm = Procman(tmp_path, procs, command=APP)
        path = getattr(pm, attr)
        with open(path, 'wb'):
            pass
        os.chmod(path, 0o666)
        _refused(pm, key, 'writable by')
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
        os.unlink(path)


def test_created_files_modes(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP).start()
    assert stat.S_IMODE(os.stat(pm.pidfile).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(pm.stderr).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(pm.scoreboard).st_mode) == 0o600
    pm.stop()


# -- what a child that dropped its privileges can reach ---------------------

@root
def test_children_hold_no_descriptor_of_the_semaphore_file(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP, prefork=2, extra="User nobody").start()
    fds = pm.request('/fds').body.decode()
    assert 'scoreboard' not in fds, fds
    mine = {os.readlink(f'/proc/{pm.pid}/fd/{fd}') for fd in os.listdir(f'/proc/{pm.pid}/fd')}
    assert pm.scoreboard not in mine        # nor the manager: its mapping needs none
    pm.stop()


@root
def test_children_get_root_free_groups_and_the_parent_death_signal(tmp_path, procs):
    nobody = pwd.getpwnam('nobody')
    pm = Procman(tmp_path, procs, command=APP, prefork=2, extra="User nobody").start()
    body = pm.request('/ids').body.decode().split()
    assert body == [f"uid={nobody.pw_uid}", f"gid={nobody.pw_gid}",
                    f"groups={','.join(map(str, sorted(os.getgrouplist('nobody', nobody.pw_gid))))}",
                    f"pdeathsig={int(signal.SIGKILL)}"]
    pm.stop()


@root
def test_a_uid_without_passwd_entry_never_runs_with_group_root(tmp_path, procs):
    uid = 54321
    with pytest.raises(KeyError):
        pwd.getpwuid(uid)
    pm = Procman(tmp_path, procs, command=APP, prefork=2, extra=f"User {uid}")
    pm.start(wait=False)
    seen = []

    def settled():
        for kid in pm.children():
            ids = _ids(kid)
            if ids and ids['Uid'][0] == str(uid):
                seen.append((ids['Gid'][0], ids['Groups']))
        if pm.proc.returncode is not None:
            return 'exited'
        if 'has no passwd entry' in pm.log():
            return 'refused'
        return None
    how = waitFor(settled, 20, interval=0.005, message="the manager to refuse the User")
    assert not [s for s in seen if s[0] == '0' or '0' in s[1]], seen
    if how == 'exited':
        assert pm.proc.returncode == 2 and 'Group' in pm.proc.popen.stderr.read().decode()


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
    # Each child's fd 2 must move to the new file (before the fix it stayed on the old one).
    waitFor(lambda: all(os.readlink(f'/proc/{kid}/fd/2') == log for kid in kids), 10,
             message="both children's stderr on the new log file")
    r = pm.request('/log', QUERY_STRING='after-rotation')
    with open(log) as f:
        assert f"after-rotation from {int(r.body.split(b'=')[1])}" in f.read()
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


# -- the scoreboard's clock and bad bytes -----------------------------------

@pytest.mark.skipif(not os.path.exists(FAKETIME), reason="needs libfaketime (apt: libfaketime)")
def test_a_wall_clock_step_does_not_time_out_busy_children(tmp_path, procs):
    clock = tmp_path / 'faketime'
    clock.write_text('+0\n')
    env = dict(LD_PRELOAD=FAKETIME, FAKETIME_TIMESTAMP_FILE=str(clock), FAKETIME_NO_CACHE='1',
               FAKETIME_DONT_FAKE_MONOTONIC='1')
    pm = Procman(tmp_path, procs, command=APP, prefork=2, env=env,
                 extra="RequestTimeout 30").start()
    result = {}
    hold = threading.Thread(target=lambda: result.update(r=pm.request('/hold', QUERY_STRING='4', timeout=30)))
    hold.start()
    waitFor(lambda: any(s['state'] == 'busy' for s in readBoard(pm.scoreboard)[1].values()),
             10, message="a busy child")
    clock.write_text('+3600\n')          # NTP steps the wall clock an hour ahead
    hold.join(30)
    assert result['r'].status == 200
    assert 'RequestTimeout' not in pm.log()
    pm.stop()


def test_a_corrupt_scoreboard_byte_shows_as_unknown(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP, prefork=2,
                 extra="MinProcesses 2\nMaxProcesses 4").start()
    waitFor(lambda: all(v['state'] == 'idle' for v in readBoard(pm.scoreboard)[1].values()),
             10, message="idle children")
    with open(pm.scoreboard, 'rb') as f:
        data = f.read()
    index, pid = next((i, struct.unpack_from('<i', data, 64 + 256 * i)[0]) for i in range(64)
                      if struct.unpack_from('<i', data, 64 + 256 * i)[0] > 0)
    offset = 64 + 256 * index
    with open(pm.scoreboard, 'r+b') as f:     # as a buggy worker would, through the mapping
        f.seek(offset + 4)
        f.write(bytes([200]))
        f.seek(offset + 16)
        f.write(struct.pack('<d', float('nan')))
    before = pm.log().count('\n')
    os.kill(pm.pid, signal.SIGTTIN)          # housekeeping must go on: one more child
    pm.waitChildren(3)
    table = peak(pm, '--status', pm.path)
    assert table.returncode == 0, table.stderr
    row = next(line.split() for line in table.stdout.splitlines() if line.split()[0] == str(pid))
    assert row[2] == 'unknown' and row[4] == '-'
    doc = peak(pm, '--status', '--json', pm.path)
    assert doc.returncode == 0 and '"unknown"' in doc.stdout and 'NaN' not in doc.stdout
    waitFor(lambda: pm.log().count('\n') > before + 1, 10, message="more log lines")
    assert 'Traceback' not in pm.log() and 'Error' not in pm.log()
    pm.stop()
