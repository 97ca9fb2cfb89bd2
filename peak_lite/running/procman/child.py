"""What a forked child runs: the preloaded subject, reporting to its scoreboard slot."""

import signal

from zope.interface import implementer

from peak_lite.running.interfaces import ICmdLineApp
from peak_lite.running.process import setTitle
from peak_lite.running.procman.scoreboard import SlotStatus
from peak_lite.running.workerstatus import setWorkerStatus

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
        try:
            return self.subject.run()
        finally:
            # We are on our way out: a second SIGHUP (a terminal's, or the
            # manager's after a Ctrl-C reached the whole group) must not turn
            # a clean exit into a death by signal.
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            setWorkerStatus(None)
