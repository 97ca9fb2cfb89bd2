import os
import signal
import threading

import pytest

from peak_lite.util import signal_stack
from peak_lite.util.interfaces import SignalStackError
from peak_lite.util.signal_stack import popSignals, pushSignals, signalsPushed


class Recorder:
    def __init__(self, name):
        self.name = name
        self.seen = []

    def __repr__(self):
        return f"Recorder({self.name})"


def handler(*names):
    """A Recorder subclass instance with methods for ``names``."""
    def method(self, signum, frame):
        self.seen.append(signum)
    cls = type('H', (Recorder,), {n: method for n in names})
    return cls('+'.join(names))


def deliver(signum):
    """Send ``signum`` to ourselves; CPython runs the handler before kill returns."""
    os.kill(os.getpid(), signum)


@pytest.fixture(autouse=True)
def balanced():
    depth = signal_stack.depth()
    before = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD,
                                                signal.SIGHUP)}
    yield
    assert signal_stack.depth() == depth
    assert before == {s: signal.getsignal(s) for s in before}


def test_push_installs_only_named_signals_and_pop_restores():
    h = handler('SIGUSR1')
    usr2 = signal.getsignal(signal.SIGUSR2)
    pushSignals(h)
    assert signal.getsignal(signal.SIGUSR2) == usr2
    deliver(signal.SIGUSR1)
    assert h.seen == [signal.SIGUSR1]
    assert popSignals() is h


def test_nested_and_partially_overlapping_pushes():
    outer, inner = handler('SIGUSR1', 'SIGUSR2'), handler('SIGUSR2')
    pushSignals(outer)
    pushSignals(inner)
    deliver(signal.SIGUSR1)     # only the outer frame handles USR1
    deliver(signal.SIGUSR2)     # the inner frame shadows USR2
    assert outer.seen == [signal.SIGUSR1] and inner.seen == [signal.SIGUSR2]
    assert popSignals() is inner
    deliver(signal.SIGUSR2)
    assert outer.seen == [signal.SIGUSR1, signal.SIGUSR2]
    assert popSignals() is outer


def test_pop_restores_default_and_ignored_dispositions():
    old = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    old2 = signal.signal(signal.SIGUSR2, signal.SIG_DFL)
    try:
        with signalsPushed(handler('SIGUSR1', 'SIGUSR2')):
            pass
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
        deliver(signal.SIGUSR1)     # ignored again: the test survives it
    finally:
        signal.signal(signal.SIGUSR1, old)
        signal.signal(signal.SIGUSR2, old2)


def test_push_none_is_an_empty_frame():
    h = handler('SIGUSR1')
    pushSignals(h)
    pushSignals(None)
    deliver(signal.SIGUSR1)
    assert popSignals() is None
    assert popSignals() is h
    assert h.seen == [signal.SIGUSR1]


def test_alias_names_one_signal():
    h = handler('SIGCLD')
    with signalsPushed(h):
        deliver(signal.SIGCHLD)
    assert h.seen == [signal.SIGCHLD]


def test_two_aliases_of_one_signal_refused():
    with pytest.raises(SignalStackError, match='SIGCHLD.*SIGCLD|SIGCLD.*SIGCHLD'):
        pushSignals(handler('SIGCHLD', 'SIGCLD'))


def test_uncatchable_signal_refused_without_trace():
    with pytest.raises(SignalStackError, match='SIGKILL cannot be caught'):
        pushSignals(handler('SIGUSR1', 'SIGKILL'))


def test_push_from_a_thread_refused():
    errors = []

    def run():
        try:
            pushSignals(handler('SIGUSR1'))
        except SignalStackError as e:
            errors.append(str(e))
    t = threading.Thread(target=run)
    t.start()
    t.join(10)
    assert errors and 'main thread' in errors[0]


def test_failure_part_way_leaves_no_trace(monkeypatch):
    real = signal.signal
    calls = []

    def flaky(signum, h):
        calls.append(signum)
        if len(calls) == 2:
            raise OSError(22, "injected failure")
        return real(signum, h)
    monkeypatch.setattr(signal_stack.signal, 'signal', flaky)
    before = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGUSR2)}
    with pytest.raises(SignalStackError, match='injected failure'):
        pushSignals(handler('SIGUSR1', 'SIGUSR2'))
    monkeypatch.undo()
    assert {s: signal.getsignal(s) for s in before} == before


def test_pop_without_push_is_an_error():
    frames = []
    while signal_stack.depth():
        frames.append(popSignals())
    try:
        with pytest.raises(SignalStackError, match='without a matching'):
            popSignals()
    finally:
        for ob in reversed(frames):
            pushSignals(ob)


def test_signal_number_names():
    assert signal_stack.signalNumber('HUP') == signal.SIGHUP
    assert signal_stack.signalNumber('sigterm') == signal.SIGTERM
    assert signal_stack.signalNumber(9) == 9
    with pytest.raises(SignalStackError, match='unknown signal'):
        signal_stack.signalNumber('NOPE')
