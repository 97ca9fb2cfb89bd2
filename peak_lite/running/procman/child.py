"""What a forked child runs: the preloaded subject, reporting to its scoreboard slot."""

import signal

from zope.interface import implementer

from peak_lite.running.interfaces import ICmdLineApp
from peak_lite.running.process import setTitle
from peak_lite.running.procman.slotstatus import SlotStatus
from peak_lite.running.procman.stuck import armStackDump
from peak_lite.running.workerstatus import setWorkerStatus
from peak_lite.util import signal_stack

__all__ = ['ChildCommand']


@implementer(ICmdLineApp)
class ChildCommand:
    """The command a child hands to the trampoline, off the manager's stack."""

    def __init__(self, subject, board, slot, wakeFd, title, number, goFd=None):
        self.subject = subject
        self.board = board
        self.slot = slot
        self.wakeFd = wakeFd
        self.title = title
        self.number = number
        self.goFd = goFd             # a standby's pipe (see standby.py), else None

    def run(self):
        status = SlotStatus(self.board, self.slot, self.wakeFd, self.goFd)
        setWorkerStatus(status)
        setTitle(f"{self.title}: worker {self.number}")
        armStackDump()               # RequestTimeout's stack (see stuck.py)
        # Beneath the worker's own handlers (its main loop pushes and pops above).
        signal_stack.pushSignals(_HupAfterTheLoop())
        try:
            return self.subject.run()
        finally:
            # We are on our way out: a second SIGHUP (a terminal's, or the
            # manager's after a Ctrl-C reached the whole group) must not turn
            # a clean exit into a death by signal.
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            setWorkerStatus(None)


class _HupAfterTheLoop:
    """SIGHUP while no handler of the worker's is in place.

    After the worker's main loop has run (its frame was pushed above this one
    and popped), the worker is on its way out: a further HUP is ignored, so a
    draining child still exits 0.  Before it ran, SIGHUP keeps its default
    action, as it had before the worker took over.
    """

    def __init__(self):
        self.pushes = signal_stack.pushCount() + 1     # counting our own push

    def SIGHUP(self, signum, frame):
        if signal_stack.pushCount() > self.pushes:
            return
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        signal.raise_signal(signal.SIGHUP)
