"""The pre-forking process manager: ``peak procman``."""

from peak_lite.running.procman.command import ProcessManager
from peak_lite.running.workerstatus import busy

__all__ = ['ProcessManager', 'busy']
