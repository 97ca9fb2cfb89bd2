"""The bottom layer: signal stack, imports, locks.  Nothing above them."""

from peak_lite.util.imports import importObject, importString, lazyImport
from peak_lite.util.interfaces import (
    AlreadyLocked, ILock, ImportStringError, IPidFile, LockError, SignalStackError, UtilError)
from peak_lite.util.signal_stack import popSignals, pushSignals, signalsPushed

__all__ = [
    'importString', 'importObject', 'lazyImport', 'pushSignals', 'popSignals', 'signalsPushed',
    'ILock', 'IPidFile', 'UtilError', 'SignalStackError', 'ImportStringError', 'LockError',
    'AlreadyLocked',
]
