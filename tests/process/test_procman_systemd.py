"""procman under systemd's eyes: the notify protocol, socket activation, and the
manager's own cost when idle."""

import math
import signal
import socket
import sys
import time

import pytest

from peak_lite.running.procman.manager import SAFETY_NET
from peak_lite.running.procman.growth import REARM
from tests.procman.scaling_apps import pidOf
from tests.support.fcgi_client import FastCGIClient, environFor
from tests.support.procman import Procman, peakArgv
from tests.support.procs import waitFor

APP = 'CGI tests.procman.scaling_apps:app'


class NotifySocket:
    """The unix datagram socket systemd would give as $NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.messages = []

    def poll(self):
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.messages

    def waitFor(self, key, after=0, timeout=20):
        def seen():
            return next((i for i, m in enumerate(self.poll()) if i >= after
                         and key in m.split('\n')), None)
        found = waitFor(lambda: seen() is not None, timeout, message=f"{key} notified")
        return seen() if found else None

    def close(self):
        self.sock.close()


def test_notify_ready_status_reloading_stopping_in_order(tmp_path, procs):
    notify = NotifySocket(tmp_path / 'notify')
    pm = Procman(tmp_path, procs, command=APP, prefork=2, extra="MaxProcesses 3",
                 env={'NOTIFY_SOCKET': notify.path})
    pm.start(children=2)
    ready = notify.waitFor('READY=1')
    assert f'MAINPID={pm.pid}' in notify.messages[ready].split('\n')
    assert any(line.startswith('STATUS=') and line.endswith('2 total')
               for line in notify.messages[ready].split('\n'))
    old = set(pm.children())
    pm.signal(signal.SIGHUP)
    reloading = notify.waitFor('RELOADING=1', after=ready + 1)
    assert any(line.startswith('MONOTONIC_USEC=') for line in notify.messages[reloading]
               .split('\n'))
    readyAgain = notify.waitFor('READY=1', after=reloading + 1)
    assert not set(pm.children()) & old
    pm.request('/')
    status = len(notify.poll())
    pm.stop()
    stopping = notify.waitFor('STOPPING=1', after=readyAgain + 1)
    keys = [line.split('=')[0] for m in notify.messages for line in m.split('\n')]
    order = [k for k in keys if k in ('READY', 'RELOADING', 'STOPPING')]
    assert order == ['READY', 'RELOADING', 'READY', 'STOPPING'], notify.messages
    assert ready < reloading < readyAgain < stopping and status <= stopping
    assert all(m.startswith(('READY=1', 'RELOADING=1', 'STOPPING=1', 'STATUS='))
               for m in notify.messages), notify.messages
    notify.close()


WRAPPER = """
import os, sys
os.dup2(int(sys.argv[1]), 3)
os.close(int(sys.argv[1]))
os.environ['LISTEN_FDS'] = '1'
os.environ['LISTEN_PID'] = str(os.getpid())
os.execv(sys.executable, [sys.executable] + sys.argv[2:])
"""


def test_socket_activation_with_listen_fds(tmp_path, procs):
    path = str(tmp_path / 'activated.sock')
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    pm = Procman(tmp_path, procs, command=APP, listen=False, prefork=2, extra="MaxProcesses 2")
    argv = [sys.executable, '-c', WRAPPER, str(listener.fileno())] + peakArgv(
        'procman', pm.path)[1:]
    pm.proc = procs(argv, env=pm.env, pass_fds=(listener.fileno(),), cwd=str(tmp_path))
    pm.pid = pm.proc.pid
    listener.close()                 # the manager holds it now
    waitFor(lambda: pm.readPid() == pm.pid or pm.proc.returncode is not None, 20)
    assert pm.proc.returncode is None, pm.log()
    pm.waitChildren(2)
    pids = set()
    for _ in range(20):
        with FastCGIClient(path) as c:
            pids.add(pidOf(c.request(environFor('GET', '/'))))
    assert pids <= set(pm.children())
    assert f"serving unix:{path}" in pm.log()
    pm.stop()


def _switches(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('voluntary_ctxt_switches:'):
                return int(line.split()[1])
    raise AssertionError(f"no voluntary_ctxt_switches for {pid}")


@pytest.mark.slow
def test_an_idle_manager_wakes_at_most_about_once_a_second(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP, prefork=3,
                 extra="MaxProcesses 6\nIdleTimeout 60\nMaxRequests 1000\nRequestTimeout 30")
    pm.start(children=3)
    pm.waitLog("ready: 3 children")
    for _ in range(10):
        pm.request('/')              # children serve now and then; the manager is not told
    window = 10.0
    before, began = _switches(pm.pid), time.monotonic()
    waitFor(lambda: time.monotonic() - began >= window, window + 5, interval=0.5)
    wakeups = _switches(pm.pid) - before
    assert wakeups <= window * 1.2 + 2, f"{wakeups} wakeups in {window}s"
    pm.stop()


# What the steady-load test's manager may legitimately wake for, each at most
# once per period (and once more for a period begun before the window):
# a child's all-busy wake, which is re-armed no sooner than REARM after it was
# used, and the re-arm timer; the warm pool's poll (REARM); the BusyStarter
# rule tests.support.procman writes (RunEvery 5); the idle check; the safety net.
STEADY_IDLE_TIMEOUT = 60.0
TIMER_PERIODS = (REARM, REARM, REARM, 5.0, STEADY_IDLE_TIMEOUT, SAFETY_NET)
STEADY_REQUESTS = 1000


def _timerWakeups(seconds):
    """The most wakeups the manager's timers allow in ``seconds``."""
    return sum(math.floor(seconds / period) + 1 for period in TIMER_PERIODS)


@pytest.mark.slow
def test_steady_load_does_not_wake_the_manager_per_request(tmp_path, procs):
    """Back-to-back requests from one client: the manager wakes for its timers only.

    The bound is counted from the timers over the time the requests took, so
    it holds however fast or loaded the machine is.  A manager woken per
    request would wake about STEADY_REQUESTS times, which the timers allow
    only in over five minutes: longer than a test may run.
    """
    pm = Procman(tmp_path, procs, command=APP, prefork=2,
                 extra=f"MaxProcesses 4\nIdleTimeout {STEADY_IDLE_TIMEOUT:g}")
    pm.start(children=2)
    pm.waitLog("ready: 2 children")
    before, began = _switches(pm.pid), time.monotonic()
    for _ in range(STEADY_REQUESTS):
        pm.request('/')
    seconds = time.monotonic() - began
    wakeups = _switches(pm.pid) - before
    allowed = _timerWakeups(seconds)
    assert wakeups <= allowed, (
        f"{wakeups} wakeups for {STEADY_REQUESTS} requests in {seconds:.1f} s; "
        f"the timers allow {allowed}")
    pm.stop()


@pytest.mark.slow
def test_a_pool_saturated_without_a_backlog_does_not_wake_the_manager_per_request(
        tmp_path, procs):
    """As many clients as children, each sending its next request as soon as it has
    its answer: every child is busy nearly all the time, and no connection waits
    for long.  The manager may look now and then, not at each request; and a
    client back before its child has marked itself idle is no reason to grow."""
    import threading
    pm = Procman(tmp_path, procs, command=APP, prefork=2,
                 extra="MinProcesses 2\nMaxProcesses 4\nIdleTimeout 600")
    pm.start(children=2)
    pm.waitLog("ready: 2 children")
    served, stop = [], threading.Event()

    def client():
        while not stop.is_set():
            pm.request('/sleep?0.01')
            served.append(1)
    threads = [threading.Thread(target=client, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    waitFor(lambda: len(served) >= 20, 10, message="requests flowing")
    before, count = _switches(pm.pid), len(served)
    began = time.monotonic()
    waitFor(lambda: time.monotonic() - began >= 3.0, 5, interval=0.1)
    wakeups, requests = _switches(pm.pid) - before, len(served) - count
    stop.set()
    for t in threads:
        t.join(10)
    assert requests > 200
    assert wakeups * 10 < requests, f"{wakeups} wakeups, {requests} requests"
    assert pm.log().count("starting one more") <= 1, pm.log()
    pm.stop()
