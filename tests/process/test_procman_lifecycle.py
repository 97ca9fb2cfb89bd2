"""procman's lifecycle through real processes: the seed config, stopping, escalation, the
pid file, StdErr, parent death, crash loops, PID 1 and ChildConfig."""

import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from peak_lite.running.procman.scoreboard import readScoreboard
from tests.support.procman import Procman, oneLineEach, peakArgv
from tests.support.procs import childrenOf, pidAlive, waitFor

APP = 'CGI tests.procman.lifecycle_apps:lifecycle'

SEED = """\
#!invoke peak procman

Command      CGI tests.procman.apps:hello       # Run this in subprocesses
PidFile      {dir}/myApp.pid        # Shell-lock this file/use as pid
StdErr       {dir}/error_log  # Point sys.stderr here

Prefork      3   # start 3 processes
MinProcesses 1   # always have at least 1
MaxProcesses 5   # but no more than 5

# ensure that these modules/classes are loaded before forking
import zope.publisher.browser
import zope.publisher.publish

<BusyStarter>
  Priority  1
  Semaphore {dir}/MyApp.busy
  RunEvery  5
</BusyStarter>
"""


def seedConfig(tmp_path):
    """The classic example config of PEAK's procman, verbatim but for the paths and the app."""
    path = tmp_path / 'myApp.conf'
    path.write_text(SEED.format(dir=tmp_path))
    return path


def seedProcman(tmp_path, procs):
    seedConfig(tmp_path)
    pm = Procman(tmp_path, procs, listen=False, name='myApp.conf')
    pm.write(SEED.format(dir=tmp_path))          # the harness's own lines are replaced
    pm.pidfile = str(tmp_path / 'myApp.pid')
    return pm


def listeningUnixSocket(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(128)
    return sock


class MaxWatcher:
    """Samples a manager's child count in a thread; ``.most`` is the highest seen."""

    def __init__(self, pid):
        self.pid = pid
        self.most = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self):
        while not self.done.wait(0.005):
            self.most = max(self.most, len(childrenOf(self.pid)))

    def stop(self):
        self.done.set()
        self.thread.join(5)
        return self.most


def test_seed_config_verbatim_on_an_inherited_fd0(tmp_path, procs):
    pm = seedProcman(tmp_path, procs)
    with listeningUnixSocket(pm.socket) as sock:
        pm.start(stdin=sock.fileno(), children=3)
    watcher = MaxWatcher(pm.pid)
    kids = pm.children()
    assert len(kids) == 3
    r = pm.request('/')
    assert r.status == 200 and int(r.body.split(b'=')[1]) in kids
    os.kill(kids[0], signal.SIGKILL)
    waitFor(lambda: kids[0] not in pm.children() and len(pm.children()) == 3, 10,
             message="the SIGKILLed child to be replaced")
    # Load that keeps every child busy for a while: the pool may grow, never past 5.
    results = []
    threads = [threading.Thread(target=lambda: results.append(pm.request('/sleep', query='1.5')))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [r.status for r in results] == [200] * 8
    assert watcher.stop() <= 5
    assert os.path.exists(tmp_path / 'MyApp.busy')
    pm.stop()


def test_seed_config_without_a_socket_is_a_one_line_config_error(tmp_path, procs):
    path = seedConfig(tmp_path)
    p = procs(peakArgv('procman', str(path)), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.wait(10) == 2
    # One line where procman was started, and the same one in its StdErr file.
    for line in oneLineEach(p.popen.stderr.read().decode(), (tmp_path / 'error_log').read_text()):
        assert re.match(rf"^.*{re.escape(str(path))}:3: .*Listen", line), line
    assert not os.path.exists(tmp_path / 'myApp.pid')


def test_sigterm_lets_a_slow_request_finish(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP, prefork=2).start()
    kids = pm.children()
    result = []
    t = threading.Thread(target=lambda: result.append(pm.request('/sleep', query='1.5')))
    t.start()
    # The request is accepted once some child is busy on it (its slot says so).
    waitFor(lambda: anyBusy(pm), 10, message="a busy child")
    pm.signal(signal.SIGTERM)
    assert pm.proc.wait(20) == 0, pm.failure()
    t.join(20)
    assert result and result[0].status == 200 and b'pid=' in result[0].body
    waitFor(lambda: not any(pidAlive(k) for k in kids), 5, message="the children to exit")
    assert not os.path.exists(pm.pidfile)
    assert not os.path.exists(pm.socket)


def anyBusy(pm):
    """True when some child's scoreboard slot says busy (it has taken a request)."""
    return any(slot['state'] == 'busy' for slot in readScoreboard(pm.scoreboard)[1])


def setTimeouts(pm, stop, kill):
    """Replace the harness's StopTimeout and KillTimeout lines."""
    with open(pm.path) as f:
        text = f.read()
    text = re.sub(r'(?m)^StopTimeout .*$', f'StopTimeout {stop}', text)
    pm.write(re.sub(r'(?m)^KillTimeout .*$', f'KillTimeout {kill}', text))


def _escalationLog(path):
    events = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return events
    for line in text.splitlines():
        pid, what, when = line.split()
        events.setdefault(what, {})[int(pid)] = float(when)
    return events


@pytest.mark.parametrize('command', ['ignoresHup', 'ignoresHupAndTerm'])
def test_stop_escalates_to_term_then_kill(tmp_path, procs, command):
    log = tmp_path / 'escalation.log'
    pm = Procman(tmp_path, procs, command=f'tests.procman.lifecycle_apps:{command}',
                 listen=False, prefork=1, env={'ESCALATION_LOG': str(log)})
    setTimeouts(pm, stop=1, kill=1)
    pm.start()
    waitFor(lambda: 'READY' in _escalationLog(log), 10, message="the child to be ready")
    kid = pm.children()[0]
    sent = time.monotonic()
    sentWall = time.time()
    pm.signal(signal.SIGTERM)
    waitFor(lambda: not pidAlive(kid), 10, message="the stubborn child to go")
    gone = time.monotonic() - sent
    assert pm.proc.wait(10) == 0, pm.failure()
    events = _escalationLog(log)
    hup, term = events['HUP'][kid] - sentWall, events['TERM'][kid] - sentWall
    assert 0 <= hup < 0.5
    assert 0.9 <= term - hup < 1.6            # StopTimeout 1
    if command == 'ignoresHup':
        assert gone - term < 0.9              # it left on SIGTERM, before any SIGKILL
        assert 'sending SIGKILL' not in pm.log()
    else:
        assert 1.9 <= gone < 3.5              # StopTimeout 1 + KillTimeout 1
        assert 'sending SIGKILL' in pm.log()
    assert 'after SIGHUP; sending SIGTERM' in pm.log()


def test_second_manager_is_refused_naming_the_first(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP).start()
    second = procs(peakArgv('procman', pm.path), stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, env=pm.env)
    assert second.wait(30) == 1
    err = second.popen.stderr.read().decode()
    assert len(err.strip().splitlines()) == 1, err
    assert f"already running as pid {pm.pid}" in err
    assert pm.readPid() == pm.pid and pm.request('/').status == 200
    pm.stop()


def test_replace_takes_over_gracefully(tmp_path, procs):
    first = Procman(tmp_path, procs, command=APP, prefork=2).start()
    oldKids = first.children()
    slow = []
    t = threading.Thread(target=lambda: slow.append(first.request('/sleep', query='1')))
    t.start()
    waitFor(lambda: anyBusy(first), 10, message="a busy child")
    second = Procman(tmp_path, procs, command=APP, prefork=2)
    second.start('--replace', children=2)
    assert first.proc.wait(20) == 0, first.failure()
    t.join(20)
    assert slow and slow[0].status == 200       # the old pool finished its request
    assert second.readPid() == second.pid != first.pid
    assert not set(second.children()) & set(oldKids)
    assert second.request('/').status == 200
    second.stop()


def test_stale_pid_file_of_a_killed_manager_does_not_block(tmp_path, procs):
    first = Procman(tmp_path, procs, command=APP).start()
    kids = first.children()
    first.signal(signal.SIGKILL)
    first.proc.wait(10)
    waitFor(lambda: not any(pidAlive(k) for k in kids), 5, message="orphaned children")
    assert first.readPid() == first.pid             # the stale file is still there
    second = Procman(tmp_path, procs, command=APP).start()
    assert second.readPid() == second.pid
    assert second.request('/').status == 200
    second.stop()


def _fd2(pid):
    return os.readlink(f'/proc/{pid}/fd/2')


def test_stderr_goes_to_the_file_and_is_reopened_on_usr1(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP, prefork=2).start()
    assert pm.request('/log', query='before-rotation').status == 200
    pm.waitLog('before-rotation from pid')
    assert 'started child' in pm.log()             # the manager's own lines
    rotated = pm.stderr + '.1'
    os.rename(pm.stderr, rotated)
    pm.signal(signal.SIGUSR1)
    everyone = [pm.pid] + pm.children()
    waitFor(lambda: all(_fd2(p) == pm.stderr for p in everyone), 10,
             message="manager and children to reopen StdErr")
    # Lines written now land in the new file, from every child and the manager.
    seen = set()

    def allChildrenLogged():
        seen.add(int(pm.request('/log', query='after-rotation').body.split(b'=')[1]))
        return seen >= set(pm.children())
    waitFor(allChildrenLogged, 20, message="a line from every child")
    victim = pm.children()[0]
    os.kill(victim, signal.SIGKILL)
    pm.waitLog(f"child {victim} killed by SIGKILL")
    new = pm.log()
    for pid in seen:
        assert f"after-rotation from pid {pid}" in new
    with open(rotated) as f:
        old = f.read()
    assert 'after-rotation' not in old and f"child {victim} killed" not in old
    pm.stop()


def test_children_die_with_a_sigkilled_manager(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP, prefork=3).start()
    kids = pm.children()
    pm.signal(signal.SIGKILL)
    killed = time.monotonic()
    waitFor(lambda: not any(pidAlive(k) for k in kids), 1.0,
             message="every child to exit within a second of the manager's death")
    assert time.monotonic() - killed < 1.0


def test_crash_loop_backs_off(tmp_path, procs):
    pm = Procman(tmp_path, procs, command='tests.procman.lifecycle_apps:crash', listen=False,
                 prefork=3)
    pm.start(wait=False)
    waitFor(lambda: pm.readPid() == pm.pid, 20, message="the manager's pid file")
    start = time.monotonic()
    waitFor(lambda: time.monotonic() - start >= 10, 11, interval=0.2)
    log = pm.log()
    starts = log.count('started child')
    # StartInterval 0.05 doubling from the first quick death: about 8 starts in 10 s;
    # without backoff, StartInterval alone would allow 200.
    assert 3 <= starts <= 10, log
    assert 'backing off: next start in' in log
    # Each start honours the delay announced after the death before it.
    events = re.findall(r'(\d\d):(\d\d),(\d\d\d) \[\d+\] \w+ procman: (?:started child|'
                        r'.*next start in ([\d.]+)s)', log)
    due = None
    for minute, second, ms, delay in events:
        at = int(minute) * 60 + int(second) + int(ms) / 1000
        if delay:
            due = at + float(delay)
        elif due is not None:
            assert at >= due - 0.05, log
    assert pm.proc.returncode is None
    pm.stop()


def test_as_pid_1_reaps_orphans_and_stops_gracefully_on_sigterm(tmp_path, procs):
    if os.geteuid() != 0:
        pytest.fail("this test needs root for unshare --pid; CI runs the tests as root")
    pm = Procman(tmp_path, procs, command=APP, prefork=2)
    pm.proc = procs(['unshare', '--pid', '--fork', '--mount-proc',
                     *peakArgv('procman', pm.path)], env=pm.env, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, cwd=str(tmp_path))
    unshare = pm.proc.pid
    manager = waitFor(lambda: childrenOf(unshare), 20, message="the manager in the namespace")[0]
    waitFor(lambda: os.path.exists(pm.pidfile), 20, message="the pid file")
    assert pm.readPid() == 1                      # as the namespace sees it
    pm.pid = manager
    pm.waitChildren(2)
    name = f'orph{os.getpid() % 100000}'
    assert pm.request('/orphan', query=f'{name}').status == 200
    orphan = waitFor(lambda: _byComm(name), 5, message="the orphan")
    assert _parentOf(orphan) == manager           # reparented to PID 1, the manager
    waitFor(lambda: not os.path.exists(f'/proc/{orphan}'), 5,
             message="the orphan to be reaped (not left a zombie)")
    kids = pm.children()
    slow = []
    t = threading.Thread(target=lambda: slow.append(pm.request('/sleep', query='1')))
    t.start()
    waitFor(lambda: anyBusy(pm), 10, message="a busy child")
    os.kill(manager, signal.SIGTERM)
    assert pm.proc.wait(20) == 0, pm.failure()
    t.join(20)
    assert slow and slow[0].status == 200
    assert not any(pidAlive(k) for k in kids)
    assert not os.path.exists(pm.pidfile)


def _byComm(name):
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/comm') as f:
                    if f.read().strip() == name:
                        return int(entry)
            except OSError:
                continue
    return None


def _parentOf(pid):
    with open(f'/proc/{pid}/stat') as f:
        return int(f.read().rsplit(')', 1)[1].split()[1])


def _isWorker(pid):
    """True once child ``pid`` has finished its bootstrap and named itself a worker."""
    with open(f'/proc/{pid}/cmdline', 'rb') as f:
        return b': worker ' in f.read()


def _catches(pid, signum):
    """True if process ``pid`` has a handler installed for ``signum``."""
    with open(f'/proc/{pid}/status') as f:
        mask = next(line.split()[1] for line in f if line.startswith('SigCgt:'))
    return bool(int(mask, 16) >> (signum - 1) & 1)


def test_child_config_sets_the_childrens_signal_handler(tmp_path, procs):
    ini = tmp_path / 'child.ini'
    ini.write_text("[peak.running.mainLoop]\n"
                   "signalHandler = importString('tests.procman.lifecycle_apps:MarkingHandler')\n")
    marks = tmp_path / 'handler.log'
    pm = Procman(tmp_path, procs, command=APP, prefork=2, env={'HANDLER_LOG': str(marks)},
                 extra=f"ChildConfig {ini}").start()
    kids = pm.children()
    # Each child's loop has pushed the handler once the process, past its
    # bootstrap (its worker title set), catches SIGUSR2.  Right after the fork
    # it still has the manager's handler, which its bootstrap then resets.
    waitFor(lambda: all(_isWorker(kid) and _catches(kid, signal.SIGUSR2) for kid in kids), 10,
             message="the children's main loops to install MarkingHandler")
    for kid in kids:
        os.kill(kid, signal.SIGUSR2)               # the default handler has no SIGUSR2: death
    waitFor(lambda: marks.exists() and
             sorted(marks.read_text().split()[1::2]) == sorted(map(str, kids)), 10,
             message="every child's MarkingHandler.SIGUSR2")
    assert sorted(pm.children()) == sorted(kids)   # nobody died of it
    pm.stop()


def test_usr1_while_children_start_kills_none(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP, prefork=4)
    pm.start(wait=False)
    pm.waitLog("started child")                  # the manager's loop and handler run
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:           # logrotate at the worst moments
        pm.signal(signal.SIGUSR1)
        time.sleep(0.002)
    pm.waitChildren(4)
    assert 'killed by SIGUSR1' not in pm.log()
    pm.stop()
