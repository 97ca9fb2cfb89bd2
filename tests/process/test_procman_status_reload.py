"""The status listener through a reload: it answers while the manager execs and the new
image imports its code (a status keeper serves meanwhile), and the keeper leaves no trace.

Real processes: an application whose import takes 2.5 s, probes that open one connection
per request every 20 ms (as a Kubernetes probe does), clients on the app's socket.
"""

import os
import signal
import threading
import time

import pytest

from tests.process.test_procman_reload_overlap import (
    APP_SOURCE, REQUEST_TIME, fdKinds, slowProcman, waitReloaded, writeApp,
    zombies)
from tests.support.load import ClientLoop, fastcgiGet
from tests.support.procman import Procman
from tests.support.procs import (childrenOf, groupPids, listeningUnixSockets, openFds,
                                 waitFor)
from tests.support.status import freePort, get, parse

INTERVAL = 0.02
PROBE_TIMEOUT = 3.0     # what a probe waits for its answer, however the reload goes
MAX_SILENCE = 1.5       # the longest the probes may go without any answer


def keepers(pid):
    """Children of the manager ``pid`` titled as its status keeper."""
    found = []
    for child in childrenOf(pid):
        try:
            with open(f'/proc/{child}/cmdline', 'rb') as f:
                if b'status keeper' in f.read():
                    found.append(child)
        except OSError:
            pass
    return found


def unixListeners(pid):
    """The listening unix sockets ``pid`` holds, as 'socket:[INODE]'."""
    return listeningUnixSockets() & set(openFds(pid).values())


class Prober:
    """A thread GETting ``paths`` from the status listener in turn, one connection each,
    recording every answer (time, path, code, body) and every failure; it also notes the
    keepers of ``managerPid`` it sees, and ``watch()`` results (a socket file's inode)."""

    def __init__(self, address, paths, managerPid, watch=None):
        self.address = address
        self.paths = paths
        self.managerPid = managerPid
        self.watch = watch
        self.answers = []       # (monotonic time answered, path, code, body)
        self.failures = []
        self.keepersSeen = set()
        self.keeperFds = {}      # pid: what its descriptors named when first seen
        self.watched = set()
        self.lock = threading.Lock()
        self.cycle = threading.Lock()     # held for each round of requests: see quiet()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping.is_set():
            with self.cycle:
                self._round()
            self.stopping.wait(INTERVAL)

    def quiet(self):
        """Hold the prober between two rounds: none of its connections is open."""
        return self.cycle

    def _round(self):
        for path in self.paths:
            started = time.monotonic()
            try:
                code, _, body = get(self.address, path, timeout=PROBE_TIMEOUT)
            except Exception as e:       # refused, reset, timed out, cut short
                with self.lock:
                    self.failures.append((round(time.monotonic() - started, 3), path,
                                          repr(e)))
                continue
            with self.lock:
                self.answers.append((time.monotonic(), path, code, body))
        seen = keepers(self.managerPid)
        for pid in set(seen) - set(self.keeperFds):
            try:
                self.keeperFds[pid] = list(openFds(pid).values())
            except OSError:
                pass        # gone already
        with self.lock:
            self.keepersSeen.update(seen)
            if self.watch is not None:
                self.watched.add(self.watch())

    def count(self, path):
        with self.lock:
            return sum(1 for _, p, _, _ in self.answers if p == path)

    def stop(self):
        self.stopping.set()
        self.thread.join(PROBE_TIMEOUT * len(self.paths) + 5)
        assert not self.thread.is_alive()

    def codes(self, path):
        return [code for _, p, code, _ in self.answers if p == path]

    def assertNoGap(self):
        """Every probe answered, and never a silence longer than MAX_SILENCE."""
        assert self.failures == [], self.failures[:5]
        times = [t for t, _, _, _ in self.answers]
        silence = max(b - a for a, b in zip(times, times[1:]))
        assert silence < MAX_SILENCE, silence

    def assertCountersNeverDecrease(self):
        last = {}
        for _, path, code, body in self.answers:
            if path != '/metrics':
                continue
            assert code == 200
            for key, number in parse(body.decode()).items():
                name = key[0]
                if not (name.endswith('_total') or name.endswith('_count')
                        or name.endswith('_bucket') or name.endswith('_sum')):
                    continue
                assert number >= last.get(key, 0), (key, last.get(key), number)
                last[key] = number
        return last


def waitKeeperGone(pm):
    waitFor(lambda: not keepers(pm.pid), 20, message="no status keeper after the reload")


def probesAfter(prober, path, more=10):
    count = prober.count(path)
    waitFor(lambda: prober.count(path) >= count + more, 20, message=f"more answers to {path}")


def test_tcp_status_answers_throughout_an_overlapping_reload(tmp_path, procs):
    port = freePort()
    pm = slowProcman(tmp_path, procs, extra=f"StatusListen 127.0.0.1:{port}")
    for _ in range(3):
        pm.request('/')
    clients = ClientLoop(fastcgiGet(pm), threads=1).start()
    prober = Prober(('127.0.0.1', port), ('/healthz', '/metrics', '/readyz'), pm.pid)
    try:
        probesAfter(prober, '/metrics')
        writeApp(pm.code, 'v2')
        pm.signal(signal.SIGHUP)
        pm.waitLog('restarting: exec')
        waitReloaded(pm, 1)
        waitKeeperGone(pm)
        probesAfter(prober, '/metrics')
    finally:
        prober.stop()
        clients.stop()
        failures = clients.failures()
    assert failures == [], failures[:5]
    prober.assertNoGap()
    assert prober.keepersSeen       # it was a keeper that answered during the exec
    assert set(prober.codes('/healthz')) == {200}
    assert set(prober.codes('/readyz')) == {200}       # the old generation served throughout
    totals = prober.assertCountersNeverDecrease()
    assert totals[('peak_requests_total', frozenset())] >= 3
    # The keeper is no worker: reaped, it counts as no exit.
    exits = {dict(labels)['reason']: n for (name, labels), n in totals.items()
             if name == 'peak_worker_exits_total'}
    assert exits['crash'] == 0 and sum(exits.values()) == exits['reload'] >= 2, exits
    assert not keepers(pm.pid) and not zombies(pm.pid)
    assert len(pm.children()) == 2
    # The keeper held the status sockets, the log and its own loop: nothing of the app's.
    appSocket = unixListeners(pm.pid)       # the status listener is TCP here
    assert len(appSocket) == 1
    for pid, targets in prober.keeperFds.items():
        assert not appSocket & set(targets), (pid, targets)
        assert not {pm.pidfile, pm.scoreboard} & set(targets), (pid, targets)
        assert sum(t.startswith('socket:') for t in targets) <= 3, (pid, targets)
    pm.stop()


def test_unix_status_socket_stays_in_place_and_answers_through_a_reload(tmp_path, procs):
    path = str(tmp_path / 'status.sock')
    pm = slowProcman(tmp_path, procs, extra=f"StatusListen unix:{path}")
    inode = os.stat(path).st_ino

    def fileId():
        try:
            return os.stat(path).st_ino
        except OSError as e:
            return repr(e)
    prober = Prober(path, ('/healthz', '/readyz', '/status'), pm.pid, watch=fileId)
    fds = []
    try:
        probesAfter(prober, '/healthz')
        for n in (1, 2):
            writeApp(pm.code, f'v{n + 1}')
            pm.signal(signal.SIGHUP)
            waitReloaded(pm, n)
            waitKeeperGone(pm)
            waitFor(lambda: not zombies(pm.pid), 10, message="the keeper reaped")
            with prober.quiet():
                fds.append(fdKinds(pm.pid))
            probesAfter(prober, '/healthz')
    finally:
        prober.stop()
    prober.assertNoGap()
    assert prober.keepersSeen       # it was a keeper that answered during the exec
    assert prober.watched == {inode}
    assert fds[0] == fds[1]         # nothing of the keeper's handover stays open
    assert len(prober.keepersSeen) == 2
    assert set(prober.codes('/healthz')) == {200} and set(prober.codes('/readyz')) == {200}
    assert set(prober.codes('/status')) == {200}
    pm.stop()
    assert not os.path.exists(path)


def test_reload_stop_healthz_answers_and_readyz_says_no_worker_accepts(tmp_path, procs):
    port = freePort()
    pm = slowProcman(tmp_path, procs, extra=f"Reload stop\nStatusListen 127.0.0.1:{port}")
    for _ in range(3):
        pm.request('/')
    old = set(pm.children())
    prober = Prober(('127.0.0.1', port), ('/healthz', '/readyz', '/metrics'), pm.pid)
    try:
        probesAfter(prober, '/healthz')
        writeApp(pm.code, 'v2')
        pm.signal(signal.SIGHUP)
        pm.waitLog('restarting: exec')
        waitFor(lambda: len(set(pm.children()) - old - set(keepers(pm.pid))) == 2, 30,
                message="the new pool")
        waitKeeperGone(pm)
        waitFor(lambda: prober.codes('/readyz')[-1:] == [200], 20, message="ready again")
    finally:
        prober.stop()
    prober.assertNoGap()
    assert prober.keepersSeen       # it was a keeper that answered during the exec
    assert set(prober.codes('/healthz')) == {200}
    assert set(prober.codes('/readyz')) == {200, 503}   # 503 while no child accepts
    totals = prober.assertCountersNeverDecrease()
    assert totals[('peak_requests_total', frozenset())] == 3
    assert pm.request('/').body.startswith(b'v2 ')
    pm.stop()


BROKEN_AFTER_CHECK = (
    "import sys\n"
    "if os.path.exists({flag!r}) and '--check' not in sys.argv:\n"
    "    raise RuntimeError('broken after the check')\n")


def test_keeper_goes_when_the_new_image_cannot_load_its_code(tmp_path, procs):
    port = freePort()
    pm = slowProcman(tmp_path, procs, extra=f"StatusListen 127.0.0.1:{port}")
    serving = set(pm.children())
    flag = tmp_path / 'broken'
    flag.touch()
    writeApp(pm.code, 'v2', extra=BROKEN_AFTER_CHECK.format(flag=str(flag)))
    prober = Prober(('127.0.0.1', port), ('/healthz', '/readyz'), pm.pid)
    try:
        probesAfter(prober, '/healthz')
        pm.signal(signal.SIGHUP)
        pm.waitLog('reload failed, the previous generation keeps serving')
        waitKeeperGone(pm)
        probesAfter(prober, '/healthz')
    finally:
        prober.stop()
    prober.assertNoGap()
    assert prober.keepersSeen       # it was a keeper that answered during the exec
    assert set(prober.codes('/healthz')) == {200} and set(prober.codes('/readyz')) == {200}
    assert set(pm.children()) == serving
    pm.stop()


def test_keeper_dies_with_a_reload_stop_image_that_cannot_load_its_code(tmp_path, procs):
    port = freePort()
    pm = slowProcman(tmp_path, procs, extra=f"Reload stop\nStatusListen 127.0.0.1:{port}")
    flag = tmp_path / 'broken'
    flag.touch()
    writeApp(pm.code, 'v2', extra=BROKEN_AFTER_CHECK.format(flag=str(flag)))
    prober = Prober(('127.0.0.1', port), ('/healthz',), pm.pid)
    try:
        probesAfter(prober, '/healthz')
        pm.signal(signal.SIGHUP)
        assert pm.proc.wait(60) == 3        # the new image could not load the app
    finally:
        prober.stop()
    assert prober.keepersSeen
    # The keeper dies with the manager: nothing of the group is left to kill.
    waitFor(lambda: not groupPids(pm.pid), 10, message="the whole process group gone")
    assert 'broken after the check' in pm.log()


def test_keeper_leaves_on_its_own_when_the_new_image_takes_too_long(tmp_path, procs):
    port = freePort()
    pm = slowProcman(tmp_path, procs,
                     extra=f"ReloadCheckTimeout 3\nStatusListen 127.0.0.1:{port}")
    flag = tmp_path / 'slower'
    flag.touch()
    # The check imports at once; the new image, past the check's deadline.
    (pm.code / 'slowapp.py').write_text(APP_SOURCE.format(
        version='v2', importTime=0, requestTime=REQUEST_TIME, extra=(
            "import sys\n"
            f"if os.path.exists({str(flag)!r}) and '--check' not in sys.argv:\n"
            "    time.sleep(6)\n")))
    prober = Prober(('127.0.0.1', port), ('/healthz',), pm.pid)
    try:
        probesAfter(prober, '/healthz')
        pm.signal(signal.SIGHUP)
        pm.waitLog('restarting: exec')
        pm.waitLog('has not taken over', 10)
        waitFor(lambda: prober.keepersSeen and not keepers(pm.pid), 10,
                message="the keeper gone before the new image serves")
        assert 'reload done' not in pm.log()
        waitReloaded(pm, 1)
    finally:
        prober.stop()
    assert get(('127.0.0.1', port), '/healthz')[0] == 200
    pm.stop()


def test_a_new_status_address_is_bound_and_the_old_one_closed(tmp_path, procs):
    first, second = freePort(), freePort()
    pm = Procman(tmp_path, procs, command='CGI tests.procman.status_apps:app', prefork=2,
                 extra=f"StatusListen 127.0.0.1:{first}").start()
    prober = Prober(('127.0.0.1', first), ('/healthz',), pm.pid)
    try:
        probesAfter(prober, '/healthz')
        with open(pm.path) as f:
            text = f.read()
        pm.write(text.replace(f"StatusListen 127.0.0.1:{first}",
                              f"StatusListen 127.0.0.1:{second}"))
        pm.signal(signal.SIGHUP)
        waitFor(lambda: 'reload done' in pm.log(), 30, message="the reload done")
        waitKeeperGone(pm)
    finally:
        prober.stop()
    assert get(('127.0.0.1', second), '/healthz')[0] == 200
    with pytest.raises(ConnectionRefusedError):
        get(('127.0.0.1', first), '/healthz')
    pm.stop()


def test_every_request_is_counted_across_an_overlapping_reload(tmp_path, procs):
    # The previous generation serves on while the new image imports its code:
    # those requests count too, read from its scoreboard, which the exec carries.
    port = freePort()
    pm = slowProcman(tmp_path, procs, extra=f"StatusListen 127.0.0.1:{port}")
    with ClientLoop(fastcgiGet(pm), threads=2) as clients:
        waitFor(lambda: clients.count() >= 20, 20, message="requests before the reload")
        writeApp(pm.code, 'v2')
        pm.signal(signal.SIGHUP)
        pm.waitLog('restarting: exec')
        served = clients.count()
        waitFor(lambda: clients.count() >= served + 20, 20,
                message="requests the previous generation serves during the import")
        waitReloaded(pm, 1)
        waitFor(lambda: clients.served('v2'), 20, message="the new code serving")
    assert clients.failures() == []
    total = clients.finished()
    _, _, body = get(('127.0.0.1', port), '/metrics')
    requests = parse(body.decode())[('peak_requests_total', frozenset())]
    assert requests == total, (requests, total)
    pm.stop()
