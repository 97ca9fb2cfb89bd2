"""This process's IWorkerStatus: how a worker tells its supervisor it is busy.

A process has one worker status, owned here.  Without a supervisor it is a
no-op; a process manager installs its scoreboard slot in each child with
``setWorkerStatus``.  Gateways and generic workers call ``busy()`` around
each request or unit of work.
"""

import contextlib

from zope.interface import implementer

from peak_lite.running.interfaces import IWorkerStatus

__all__ = ['NullStatus', 'busy', 'getWorkerStatus', 'setWorkerStatus']


@implementer(IWorkerStatus)
class NullStatus:
    """IWorkerStatus for a worker nobody supervises: a cheap no-op."""

    stopping = False

    def busy(self, line=None):
        return contextlib.nullcontext()

    def responded(self, code):
        pass


_status = NullStatus()


def getWorkerStatus():
    """Return this process's IWorkerStatus."""
    return _status


def setWorkerStatus(status):
    """Install ``status`` (an IWorkerStatus, or None for the no-op) for this process."""
    global _status
    _status = NullStatus() if status is None else status


def busy():
    """``with busy():`` marks this worker busy for one unit of work, idle after."""
    return _status.busy()
