"""Pid files and flock locks, exercised by real processes."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from zope.interface.verify import verifyObject

from peak_lite.util.interfaces import AlreadyLocked, ILock, IPidFile, LockError
from peak_lite.util.lockfile import FlockFile, PidFile, pidFileHolder, readPidFile
from tests.support.procs import pidAlive, waitFor

HOLDER = textwrap.dedent("""
    import os, sys, time
    from peak_lite.util.lockfile import PidFile
    path, mode = sys.argv[1], sys.argv[2]
    if mode == 'adopt':
        pf = PidFile.fromEnvironment(os.environ, path)
        assert pf is not None, os.environ.get(PidFile.ENV)
        print('adopted', os.getpid(), flush=True)
    else:
        pf = PidFile(path).create()
        print('locked', os.getpid(), flush=True)
        if mode == 'exec':
            env = dict(os.environ)
            pf.inheritAcrossExec(env)
            os.execve(sys.executable, [sys.executable, '-c', sys.argv[3], path, 'adopt', ''], env)
    sys.stdin.read()          # hold until told to go
    pf.remove()
""")


def hold(procs, path, mode='hold'):
    p = procs([sys.executable, '-c', HOLDER, str(path), mode, HOLDER],
              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = p.popen.stdout.readline().decode()
    assert line.split()[0] in ('locked', 'adopted'), line
    return p, int(line.split()[1])


def test_interfaces(tmp_path):
    verifyObject(ILock, FlockFile(tmp_path / 'l'))
    verifyObject(IPidFile, PidFile(tmp_path / 'p'))


def test_second_process_refused_naming_the_holder(procs, tmp_path):
    path = tmp_path / 'app.pid'
    p, pid = hold(procs, path)
    assert path.read_text() == f"{pid}\n"
    with pytest.raises(AlreadyLocked) as info:
        PidFile(path).create()
    assert info.value.pid == pid
    assert f"process {pid} holds this pid file" in str(info.value)
    assert readPidFile(path) == pid


def test_lock_survives_exec(procs, tmp_path):
    path = tmp_path / 'app.pid'
    p, pid = hold(procs, path, 'exec')
    line = p.popen.stdout.readline().decode().split()
    assert line == ['adopted', str(pid)]        # same process, after exec
    with pytest.raises(AlreadyLocked):
        PidFile(path).create()
    assert path.read_text() == f"{pid}\n"


def test_stale_file_from_killed_process_does_not_block(procs, tmp_path):
    path = tmp_path / 'app.pid'
    p, pid = hold(procs, path)
    p.signal(signal.SIGKILL)
    p.wait()
    waitFor(lambda: not pidAlive(pid))
    assert path.exists() and readPidFile(path) is None     # stale: nobody holds it
    pf = PidFile(path).create()
    assert path.read_text() == f"{os.getpid()}\n"
    pf.remove()
    assert not path.exists()


def test_symlink_refused(tmp_path):
    target = tmp_path / 'elsewhere'
    target.write_text('')
    (tmp_path / 'app.pid').symlink_to(target)
    with pytest.raises(LockError, match='symlink'):
        PidFile(tmp_path / 'app.pid').create()


def test_removed_only_by_its_owner(procs, tmp_path):
    path = tmp_path / 'app.pid'
    p, pid = hold(procs, path)
    mine = PidFile(path)
    mine.remove()                    # not held by us: nothing happens
    assert path.read_text() == f"{pid}\n"
    p.popen.stdin.close()            # the owner removes it on its way out
    assert p.wait() == 0
    assert not path.exists()


def test_remove_keeps_a_file_naming_another_process(tmp_path):
    path = tmp_path / 'app.pid'
    pf = PidFile(path).create()
    os.pwrite(pf.fd, b"1\n", 0)      # someone rewrote it: not ours any more
    pf.remove()
    assert path.read_text().startswith("1")
    assert not pf.locked()


def test_flock_attempt_obtain_release(tmp_path):
    a, b = FlockFile(tmp_path / 'l'), FlockFile(tmp_path / 'l')
    assert a.attempt() and a.locked()
    assert not b.attempt() and not b.locked()
    a.release()
    assert b.obtain() and b.locked()
    b.release()
    with pytest.raises(LockError, match='not held'):
        b.release()


def test_the_lock_holder_is_named_and_a_decoy_pid_is_not(procs, tmp_path):
    path = tmp_path / 'p.pid'
    p, pid = hold(procs, path, 'exec')            # the pid survives the exec, so does the lock
    assert pidFileHolder(str(path)) == (pid, pid)
    decoy = procs(['sleep', '60'])
    with open(path, 'r+') as f:                   # in place: the lock stays
        f.truncate(0)
        f.write(f"{decoy.pid}\n")
    assert pidFileHolder(str(path)) == (decoy.pid, pid)
    p.popen.stdin.close()
    p.wait()
    assert pidFileHolder(str(path)) == (None, None)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / 'p.pid'
    os.mkfifo(path)
    with pytest.raises(LockError, match='not a regular file'):
        PidFile(str(path)).create()
    assert readPidFile(str(path)) is None


def test_a_file_others_can_write_is_refused(tmp_path):
    path = tmp_path / 'p.pid'
    path.write_text('')
    os.chmod(path, 0o664)
    with pytest.raises(LockError, match='writable by its group'):
        PidFile(str(path)).create()
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o664)


def test_rewriting_the_pid_after_exec_never_shows_a_reader_an_empty_file(procs, tmp_path):
    """A manager re-adopts its pid file after a restart's exec and writes its pid again:
    ``peak procman --reload``, polling the file meanwhile, must never read it empty
    and take the manager for gone."""
    path = str(tmp_path / 'app.pid')
    pidfile = PidFile(path)
    pidfile.create()
    reader = procs([sys.executable, '-c', textwrap.dedent(f"""
        import sys, time
        from peak_lite.util.lockfile import readPidFile
        deadline, empty, reads = time.monotonic() + 3, 0, 0
        while time.monotonic() < deadline:
            reads += 1
            empty += readPidFile({path!r}) is None
        print(empty, reads)
        """)], stdout=subprocess.PIPE)
    deadline = time.monotonic() + 3.5
    while reader.popen.poll() is None and time.monotonic() < deadline:
        PidFile(path).adopt(pidfile.fd)          # what the exec'd manager does
    out, _ = reader.popen.communicate(timeout=10)
    empty, reads = map(int, out.split())
    assert reads > 1000 and empty == 0, (empty, reads)
    pidfile.remove()
