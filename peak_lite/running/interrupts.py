"""Interrupting the work in progress: ``Interrupted``, its scope, and the commit it spares.

A gateway runs each request inside ``MainLoop.interruptible()``: there the
signals a handler names in ``interruptSignals`` raise ``Interrupted`` at
once instead of waiting for the loop.  Never inside a transaction's
two-phase commit, though (see ``inTwoPhaseCommit``).
"""

import signal

__all__ = ['Interrupted', 'InterruptibleScope', 'inTwoPhaseCommit']

# Frames of a transaction's two-phase commit: an Interrupted raised there
# would abort a commit that may already be decided, a lie about what was
# committed.  The signal is only deferred while one of them is on the stack.
_TWO_PHASE = frozenset({'_commitResources', 'tpc_begin', 'tpc_vote', 'tpc_finish'})


def inTwoPhaseCommit(frame):
    while frame is not None:
        if frame.f_code.co_name in _TWO_PHASE:
            return True
        frame = frame.f_back
    return False


class Interrupted(BaseException):
    """Raised inside ``MainLoop.interruptible()`` by a signal the handler names in
    ``interruptSignals``: the work in progress is abandoned (its transaction
    aborts as the exception unwinds) and the deferred handler still runs.

    A BaseException, like KeyboardInterrupt, so ``except Exception`` in
    application code does not swallow it.
    """

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class InterruptibleScope:
    """``MainLoop.interruptible()``'s context manager: a nesting count, kept by the
    loop.  One instance per loop, reused by every request: entering it
    allocates nothing (a generator-based context manager would, per request).
    """

    __slots__ = ('depth',)

    def __init__(self):
        self.depth = 0

    def __enter__(self):
        self.depth += 1
        return self

    def __exit__(self, excType, exc, tb):
        self.depth -= 1
        return False
