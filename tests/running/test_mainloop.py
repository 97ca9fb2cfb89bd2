"""MainLoop in-process: timing, exit codes, deferred signals, fork hygiene."""

import asyncio
import gc
import os
import select
import signal
import socket
import threading
import time

import pytest
import transaction
from zope.interface.verify import verifyClass, verifyObject

from peak_lite.running.interfaces import IMainLoop, IMainLoopExtras, ISignalHandler, RunningError
from peak_lite.running.mainloop import Interrupted, MainLoop, StopOnStandardSignals
from peak_lite.util import signal_stack
from tests.support.procs import waitFor

SAFETY = 30     # stopAfter for tests that expect something else to stop the loop


def openFds():
    """This process's descriptors, each with what it refers to.

    Garbage is collected first: a socket or file an earlier test dropped in a
    reference cycle is closed now, not by a collection that happens to run in
    the middle of a before/after comparison.  The target tells a number the
    check's own code reused apart from the descriptor that had it before.
    """
    gc.collect()
    found = {}
    for name in os.listdir('/proc/self/fd'):
        try:
            found[int(name)] = os.readlink(f'/proc/self/fd/{name}')
        except FileNotFoundError:
            pass            # the listing's own descriptor, closed by now
    return found


def test_interfaces():
    verifyClass(IMainLoop, MainLoop)
    ml = MainLoop()
    verifyObject(IMainLoop, ml)
    verifyObject(IMainLoopExtras, ml)
    verifyObject(ISignalHandler, StopOnStandardSignals(ml))
    ml.close()
    assert ml._loop is None


def test_stop_after():
    ml = MainLoop()
    start = time.monotonic()
    assert ml.run(stopAfter=0.2) == 0
    assert 0.2 <= time.monotonic() - start < 5


def test_last_activity_only_while_running():
    ml = MainLoop()
    seen = []
    ml.eventLoop.call_soon(lambda: (seen.append(ml.lastActivity), ml.stop()))
    assert ml.lastActivity is None
    ml.run(stopAfter=SAFETY)
    assert isinstance(seen[0], float)
    assert ml.lastActivity is None


def test_idle_timeout_counts_from_last_activity():
    ml = MainLoop()
    start = time.monotonic()
    busyUntil = start + 0.6

    def poke():
        if time.monotonic() < busyUntil:
            ml.activityOccurred()
            ml.eventLoop.call_later(0.05, poke)

    ml.eventLoop.call_soon(poke)
    ml.run(idleTimeout=0.3, stopAfter=SAFETY)
    elapsed = time.monotonic() - start
    assert 0.6 + 0.3 - 0.06 <= elapsed < 5


def test_idle_timeout_alone():
    ml = MainLoop()
    start = time.monotonic()
    ml.run(idleTimeout=0.2, stopAfter=SAFETY)
    assert 0.2 <= time.monotonic() - start < 5


def test_run_at_least_delays_idle_timeout():
    ml = MainLoop()
    start = time.monotonic()
    ml.run(idleTimeout=0.1, runAtLeast=0.5, stopAfter=SAFETY)
    assert 0.5 <= time.monotonic() - start < 5


def test_run_at_least_does_not_delay_stop():
    ml = MainLoop()
    ml.eventLoop.call_later(0.05, ml.stop)
    start = time.monotonic()
    ml.run(runAtLeast=SAFETY, stopAfter=SAFETY)
    assert time.monotonic() - start < 5


def test_exit_with_returns_any_object():
    ml = MainLoop()
    token = object()
    ml.eventLoop.call_soon(ml.exitWith, token)
    assert ml.run(stopAfter=SAFETY) is token
    # the exit code does not leak into the next run
    assert ml.run(stopAfter=0.01) == 0


def test_bad_arguments_and_reentry():
    ml = MainLoop()
    with pytest.raises(RunningError, match="idleTimeout must be a number >= 0, got -1"):
        ml.run(idleTimeout=-1)
    errors = []

    def reenter():
        try:
            ml.run()
        except RunningError as e:
            errors.append(str(e))
        ml.stop()

    ml.eventLoop.call_soon(reenter)
    ml.run(stopAfter=SAFETY)
    assert errors == ["MainLoop.run() called while it is already running"]


def test_tasks_are_cancelled_and_loop_closed_after_run():
    ml = MainLoop()
    cancelled = []

    async def forever():
        try:
            await asyncio.sleep(SAFETY)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    loop = ml.eventLoop
    loop.create_task(forever())
    loop.call_later(0.05, ml.stop)
    ml.run(stopAfter=SAFETY)
    assert cancelled == [True]
    assert loop.is_closed()
    assert ml.eventLoop is not loop and not ml.eventLoop.is_closed()
    ml.run(stopAfter=0.01)


def test_no_descriptor_or_handler_leaks():
    before_fds = openFds()
    before = {s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)}
    depth = signal_stack.depth()
    ml = MainLoop()
    ml.eventLoop.call_soon(os.kill, os.getpid(), signal.SIGTERM)
    ml.run(stopAfter=SAFETY)
    assert {s: signal.getsignal(s) for s in before} == before
    assert signal_stack.depth() == depth
    assert signal.set_wakeup_fd(-1) == -1
    assert openFds() == before_fds


class _CycleHoldingFd:
    """Garbage an earlier test may leave: a descriptor closed by a finalizer, in a cycle."""

    def __init__(self):
        self.me = self
        self.fd = os.open(os.devnull, os.O_RDONLY)

    def __del__(self):
        os.close(self.fd)


def test_the_leak_check_is_not_fooled_by_garbage_collected_meanwhile():
    for _ in range(3):
        _CycleHoldingFd()
    threshold = gc.get_threshold()
    gc.set_threshold(1)          # a collection comes due in the middle of the check
    try:
        test_no_descriptor_or_handler_leaks()
    finally:
        gc.set_threshold(*threshold)


def test_sigterm_while_idle_stops_promptly_even_from_another_thread():
    # The signal is sent by another thread while the loop sleeps in select().
    ml = MainLoop()
    sent = []

    def sender():
        waitFor(lambda: ml.lastActivity is not None, 10)
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGTERM)

    t = threading.Thread(target=sender)
    t.start()
    ml.run(stopAfter=SAFETY)
    stopped = time.monotonic()
    t.join()
    assert stopped - sent[0] < 0.5


def test_handler_runs_as_loop_callback_not_inside_the_os_handler():
    calls = []

    class Handler:
        def SIGUSR1(self, signum, frame):
            calls.append(('handler', signum, asyncio.get_running_loop() is ml.eventLoop))
            ml.exitWith(7)

    ml = MainLoop(signalHandler=Handler())

    def callback():
        os.kill(os.getpid(), signal.SIGUSR1)
        # Python ran the OS-level handler already; the real method has not run.
        calls.append('callback done')

    ml.eventLoop.call_soon(callback)
    assert ml.run(stopAfter=SAFETY) == 7
    assert calls == ['callback done', ('handler', signal.SIGUSR1, True)]


def test_handler_class_is_a_factory_given_the_loop():
    class Handler:
        def __init__(self, mainLoop):
            self.mainLoop = mainLoop

        def SIGUSR2(self, signum, frame):
            self.mainLoop.exitWith('usr2')

    ml = MainLoop(signalHandler=Handler)
    assert isinstance(ml.signalHandler, Handler) and ml.signalHandler.mainLoop is ml
    ml.eventLoop.call_soon(os.kill, os.getpid(), signal.SIGUSR2)
    assert ml.run(stopAfter=SAFETY) == 'usr2'


def test_custom_handler_replaces_default():
    class OnlyUsr1:
        def SIGUSR1(self, signum, frame):
            ml.stop()

    before = signal.getsignal(signal.SIGTERM)
    seen = []
    ml = MainLoop(signalHandler=OnlyUsr1())
    ml.eventLoop.call_soon(lambda: seen.append(signal.getsignal(signal.SIGTERM)))
    ml.eventLoop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
    ml.run(stopAfter=SAFETY)
    assert seen == [before]


def test_sighup_waits_for_the_interrupted_callback():
    ml = MainLoop()
    order = []

    def longCallback():
        os.kill(os.getpid(), signal.SIGHUP)
        order.append('callback finished')

    ml.eventLoop.call_soon(longCallback)
    ml.eventLoop.call_later(SAFETY / 2, order.append, 'too late')
    ml.run(stopAfter=SAFETY)
    assert order == ['callback finished']


def test_sighup_waits_for_the_interrupted_task():
    ml = MainLoop()
    order = []

    async def longTask():
        os.kill(os.getpid(), signal.SIGHUP)
        order.append('signalled')
        await asyncio.sleep(0.3)
        order.append('task finished')

    ml.eventLoop.create_task(longTask())
    start = time.monotonic()
    ml.run(stopAfter=SAFETY)
    assert order == ['signalled', 'task finished']
    assert 0.3 <= time.monotonic() - start < 5


def test_sighup_while_idle_stops_now():
    ml = MainLoop()

    async def bystander():
        await asyncio.sleep(SAFETY)

    ml.eventLoop.create_task(bystander())
    ml.eventLoop.call_later(0.05, os.kill, os.getpid(), signal.SIGHUP)
    start = time.monotonic()
    ml.run(stopAfter=SAFETY)
    assert time.monotonic() - start < 5


def test_sigterm_does_not_wait_for_the_task():
    ml = MainLoop()

    async def longTask():
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(SAFETY)

    ml.eventLoop.create_task(longTask())
    start = time.monotonic()
    ml.run(stopAfter=SAFETY)
    assert time.monotonic() - start < 5


def test_run_outside_the_main_thread_handles_no_signals():
    ml = MainLoop()
    result = []
    t = threading.Thread(target=lambda: result.append(ml.run(stopAfter=0.05)))
    t.start()
    t.join(10)
    assert result == [0]


def _readable(sock, timeout=5):
    return select.select([sock], [], [], timeout)[0]


def test_forget_loop_after_fork_keeps_parent_registrations():
    ml = MainLoop()
    loop = ml.eventLoop
    r, w = socket.socketpair()
    got = []
    loop.add_reader(r.fileno(), lambda: (got.append(r.recv(10)), loop.stop()))
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:    # child: abandon the loop, then exit without running anything else
        code = 1
        try:
            fresh = ml.eventLoop            # the child abandons the parent's loop
            code = 0 if fresh is not loop and not fresh.is_closed() else 2
        finally:
            os.write(report_w, bytes([code]))
            os._exit(code)
    os.close(report_w)
    try:
        assert os.read(report_r, 1) == b'\0'
        assert os.waitpid(pid, 0)[1] == 0
        # The parent's reader is still registered in the (shared) epoll set.
        w.send(b'ping')
        loop.call_later(SAFETY, loop.stop)
        loop.run_forever()
        assert got == [b'ping']
    finally:
        os.close(report_r)
        loop.remove_reader(r.fileno())
        loop.close()
        r.close()
        w.close()


def test_forked_child_unwinds_the_running_loop_via_exit_with():
    ml = MainLoop()
    r, w = socket.socketpair()
    report_r, report_w = os.pipe()
    parentGot = []
    children = []

    def forkNow():
        pid = os.fork()
        if pid == 0:
            ml.exitWith('child command')    # the trampoline way out
        else:
            children.append(pid)
            w.send(b'x')

    def onReadable():
        parentGot.append(r.recv(10))
        ml.stop()

    ml.eventLoop.add_reader(r.fileno(), onReadable)
    ml.eventLoop.call_soon(forkNow)
    mypid = os.getpid()
    result = ml.run(stopAfter=SAFETY)
    if os.getpid() != mypid:
        code = 3
        try:
            code = 0 if result == 'child command' else 4
        finally:
            os.write(report_w, bytes([code]))
            os._exit(code)
    os.close(report_w)
    try:
        assert parentGot == [b'x']
        assert os.read(report_r, 1) == b'\0'
        assert os.waitpid(children[0], 0)[1] == 0
    finally:
        os.close(report_r)
        r.close()
        w.close()


def test_an_event_loop_made_before_a_fork_is_never_run_in_the_child():
    ml = MainLoop()
    ran = []
    r, w = socket.socketpair()
    ml.eventLoop.call_soon(ran.append, 'inherited')
    ml.eventLoop.add_reader(r.fileno(), lambda: (ran.append(r.recv(10)), ml.stop()))
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:    # child: run the loop; nothing the parent scheduled may run here
        code = 3
        try:
            w.send(b'child')
            ml.eventLoop.call_later(0.05, ml.stop)
            ml.run(stopAfter=SAFETY)
            code = 0 if ran == [] else 4
        finally:
            os.write(report_w, bytes([code]))
            os._exit(code)
    os.close(report_w)
    try:
        assert os.read(report_r, 1) == b'\0'
        assert os.waitpid(pid, 0)[1] == 0
        # The parent's callback and reader are intact, and see the child's byte.
        ml.run(stopAfter=SAFETY)
        assert ran == ['inherited', b'child']
    finally:
        os.close(report_r)
        r.close()
        w.close()


def test_a_signal_during_two_phase_commit_never_raises_there():
    events = []

    class DataManager:
        transaction_manager = transaction.manager

        def tpc_begin(self, txn):
            events.append('tpc_begin')

        def commit(self, txn):
            events.append('commit')

        def tpc_vote(self, txn):
            os.kill(os.getpid(), signal.SIGTERM)     # a real signal, between vote and finish
            events.append('tpc_vote')

        def tpc_finish(self, txn):
            events.append('tpc_finish')

        def tpc_abort(self, txn):
            events.append('tpc_abort')

        def abort(self, txn):
            events.append('abort')

        def sortKey(self):
            return 'test-dm'

    ml = MainLoop()

    def work():
        try:
            with ml.interruptible():
                with transaction.manager as txn:
                    txn.join(DataManager())
                events.append('after')
        except Interrupted:
            events.append('interrupted')

    ml.eventLoop.call_soon(work)
    assert ml.run(stopAfter=SAFETY) == 0
    assert events[:4] == ['tpc_begin', 'commit', 'tpc_vote', 'tpc_finish'], events
    assert 'tpc_abort' not in events and 'interrupted' not in events[:5], events
