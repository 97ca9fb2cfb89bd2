"""A stack of signal-handler frames: ``pushSignals(ob)`` / ``popSignals()``.

``pushSignals(ob)`` installs, for every signal ``ob`` has a method named
after (``SIGHUP``, ``SIGTERM``, ...), that bound method as the handler, and
leaves every other signal alone.  ``popSignals()`` puts back exactly what the
matching push replaced.  Handlers run like ``signal.signal`` handlers, with
``(signum, frame)``, in the main thread.
"""

import contextlib
import signal
import threading

from peak_lite.util.interfaces import SignalStackError

__all__ = ['pushSignals', 'popSignals', 'signalsPushed', 'signalNumber', 'SIGNAL_NAMES']

UNCATCHABLE = frozenset(
    getattr(signal, name) for name in ('SIGKILL', 'SIGSTOP') if hasattr(signal, name))

# Every name (aliases included) that names a real signal, mapped to its number.
SIGNAL_NAMES = {
    name: int(getattr(signal, name)) for name in dir(signal)
    if name.startswith('SIG') and not name.startswith('SIG_')
    and isinstance(getattr(signal, name), int)
}


class _Frame:
    __slots__ = ('ob', 'previous')

    def __init__(self, ob, previous):
        self.ob = ob
        self.previous = previous     # {signum: handler it replaced}


_stack = []
_pushes = 0     # pushes ever made in this process (see pushCount)


def signalNumber(sig):
    """Return the number of a signal given by number, 'SIGHUP' or 'HUP'."""
    if isinstance(sig, int):
        return int(sig)
    name = str(sig).upper()
    if not name.startswith('SIG'):
        name = 'SIG' + name
    try:
        return SIGNAL_NAMES[name]
    except KeyError:
        raise SignalStackError(f"unknown signal name {sig!r}") from None


def _handlersOf(ob):
    """Map signum -> bound method for each signal ``ob`` has a method for."""
    found = {}
    if ob is None:
        return found
    for name, signum in SIGNAL_NAMES.items():
        method = getattr(ob, name, None)
        if method is None:
            continue
        if not callable(method):
            raise SignalStackError(f"{ob!r}.{name} is not callable, so it cannot handle {name}")
        if signum in UNCATCHABLE:
            raise SignalStackError(
                f"{ob!r} defines {name}, but {name} cannot be caught; remove that method")
        if signum in found:
            other = next(n for n, s in SIGNAL_NAMES.items()
                         if s == signum and n != name and getattr(ob, n, None) is not None)
            raise SignalStackError(
                f"{ob!r} defines both {other} and {name}, which name one signal; keep one")
        found[signum] = method
    return found


def _checkMainThread(what):
    if threading.current_thread() is not threading.main_thread():
        raise SignalStackError(f"{what} must be called from the main thread")


def pushSignals(ob):
    """Install ``ob``'s ``SIGxxx`` methods as handlers; push a frame to undo it.

    ``pushSignals(None)`` pushes an empty frame.  Raises SignalStackError,
    with every handler left as it was, for an uncatchable signal, two
    aliases of one signal, a call outside the main thread, or a failure
    part-way through.
    """
    _checkMainThread("pushSignals()")
    handlers = _handlersOf(ob)
    previous = {}
    try:
        for signum, method in handlers.items():
            previous[signum] = signal.getsignal(signum)
            signal.signal(signum, method)
    except BaseException as e:
        _restore(previous)
        if isinstance(e, (OSError, ValueError, RuntimeError)):
            raise SignalStackError(
                f"could not install {ob!r}'s handler for signal {signum}: {e}") from e
        raise
    global _pushes
    _stack.append(_Frame(ob, previous))
    _pushes += 1


def popSignals():
    """Undo the most recent push exactly and return the object pushed."""
    _checkMainThread("popSignals()")
    if not _stack:
        raise SignalStackError("popSignals() without a matching pushSignals()")
    frame = _stack.pop()
    _restore(frame.previous)
    return frame.ob


def _restore(previous):
    for signum, handler in previous.items():
        # None means the handler was installed outside Python; the best we can
        # put back is the default.
        signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def depth():
    """How many frames are pushed (for tests and the child bootstrap)."""
    return len(_stack)


def pushCount():
    """How many pushes this process has made so far: a frame that sees the count
    grow while it stayed below knows another frame was pushed (and popped) above it."""
    return _pushes


def resetAfterFork():
    """In a forked child: pop every inherited frame, restoring what each replaced."""
    while _stack:
        popSignals()


@contextlib.contextmanager
def signalsPushed(ob):
    """``with signalsPushed(ob):`` pushes ``ob``'s handlers and pops them on exit."""
    pushSignals(ob)
    try:
        yield ob
    finally:
        popSignals()
