"""What a forked child runs: the preloaded subject, reporting to its scoreboard slot."""

import signal

from zope.interface import implementer

from peak_lite.running.interfaces import ICmdLineApp
from peak_lite.running.process import setTitle
from peak_lite.running.procman.scoreboard import STATE, STATE_OFFSET, STOPPING, SlotStatus
from peak_lite.running.procman.stuck import armStackDump
from peak_lite.running.workerstatus import setWorkerStatus
from peak_lite.util import signal_stack

__all__ = ['ChildCommand']


@implementer(ICmdLineApp)
class ChildCommand:
    """The command a child hands to the trampoline, off the manager's stack."""

    def __init__(self, subject, board, slot, wakeFd, title, number):
        self.subject = subject
        self.board = board
        self.slot = slot
        self.wakeFd = wakeFd
        self.title = title
        self.number = number

    def run(self):
        status = SlotStatus(self.board, self.slot, self.wakeFd)
        setWorkerStatus(status)
        setTitle(f"{self.title}: worker {self.number}")
        armStackDump()               # RequestTimeout's stack (see stuck.py)
        # Beneath the worker's own handlers (its main loop pushes and pops above).
        signal_stack.pushSignals(_HupWhileDraining(status))
        try:
            return self.subject.run()
        finally:
            # We are on our way out: a second SIGHUP (a terminal's, or the
            # manager's after a Ctrl-C reached the whole group) must not turn
            # a clean exit into a death by signal.
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            setWorkerStatus(None)


class _HupWhileDraining:
    """SIGHUP while no handler of the worker's is in place (before its main loop
    runs, or after it stopped): ignored once the manager has asked this child
    to stop (a further HUP to a draining child changes nothing); otherwise the
    default action, as before the worker took over."""

    def __init__(self, status):
        self.status = status

    def SIGHUP(self, signum, frame):
        state = STATE.unpack_from(self.status.map, self.status.offset + STATE_OFFSET)[0]
        if state == STOPPING:
            return
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        signal.raise_signal(signal.SIGHUP)
