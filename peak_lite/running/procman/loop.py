"""The manager's own loop: readers, timers and signals on one ``selectors`` selector.

The manager does not run on asyncio, because it forks: a child forked inside
an asyncio callback would have to unwind through the parent's loop and scrub
its private state.  This loop forks nowhere.  ``runOnce()`` runs one turn
and returns; the manager forks *between* turns (see Manager.run), so a new
child starts from a clean point, with no loop of the manager's on its stack.

The signal path, in one place:

1. ``install(table)`` points Python's C-level wakeup descriptor
   (``signal.set_wakeup_fd``) at a pipe and, through ``pushSignals``, gives
   every signal of ``table`` a Python handler that does nothing at all.  The
   C handler has already written the signal's number into the pipe.
2. The pipe is a reader of this loop.  Its callback reads the numbers and
   calls ``table[signum]()`` once per signal received since the last turn
   (repeats of one signal coalesce), in the loop, never inside a handler.

So a signal wakes the loop even while it sleeps in ``select()`` (which PEP
475 would otherwise silently restart), from whichever thread took it.

Later work registers its own descriptors with ``addReader(fd, callback)``
and its own timers with ``callLater``; a callback must never fork.
"""

import heapq
import itertools
import logging
import os
import selectors
import signal
import time

from peak_lite.util import signal_stack

log = logging.getLogger('peak_lite.procman')

__all__ = ['ManagerLoop', 'Timer']


class Timer:
    """A callback due at a monotonic time; ``cancel()`` stops it from running."""

    __slots__ = ('when', 'callback', 'args', 'cancelled')

    def __init__(self, when, callback, args):
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self):
        self.cancelled = True


class _Recorder:
    """What ``pushSignals`` installs: handlers with nothing to do (the wakeup fd records)."""

    def __init__(self, signums):
        for signum in signums:
            setattr(self, signal.Signals(signum).name, _record)


def _record(signum, frame):
    """The C handler has written ``signum`` to the wakeup pipe already."""


class ManagerLoop:
    """One turn at a time: ``runOnce()`` waits for a reader, a signal or the next timer."""

    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.timers = []
        self.order = itertools.count()       # ties between timers run in call order
        self.table = {}
        self.signalR = self.signalW = None
        self.previousWakeup = None
        self.wakeups = 0                     # turns that found something to do

    # -- readers and timers -------------------------------------------------

    def addReader(self, fd, callback):
        """Call ``callback()`` in the loop whenever ``fd`` is readable."""
        self.selector.register(fd, selectors.EVENT_READ, callback)

    def removeReader(self, fd):
        self.selector.unregister(fd)

    def callLater(self, delay, callback, *args):
        return self.callAt(time.monotonic() + max(0.0, delay), callback, *args)

    def callAt(self, when, callback, *args):
        timer = Timer(when, callback, args)
        heapq.heappush(self.timers, (when, next(self.order), timer))
        return timer

    def nextDue(self):
        """Monotonic time of the next live timer, or None."""
        while self.timers and self.timers[0][2].cancelled:
            heapq.heappop(self.timers)
        return self.timers[0][0] if self.timers else None

    def runOnce(self, timeout=None):
        """Sleep until a reader is ready, a signal arrives or a timer is due; run them.

        ``timeout`` (seconds) caps the sleep; None sleeps until the next timer.
        """
        due = self.nextDue()
        wait = timeout
        if due is not None:
            until = max(0.0, due - time.monotonic())
            wait = until if wait is None else min(wait, until)
        ready = self.selector.select(wait)
        if ready:
            self.wakeups += 1
        for key, _ in ready:
            key.data()
        now = time.monotonic()
        while self.timers and (self.timers[0][2].cancelled or self.timers[0][0] <= now):
            _, _, timer = heapq.heappop(self.timers)
            if not timer.cancelled:
                timer.cancelled = True
                timer.callback(*timer.args)

    # -- signals ------------------------------------------------------------

    def install(self, table):
        """Handle each signal of ``table`` (signum -> callable) through the loop."""
        self.signalR, self.signalW = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.table = dict(table)
        self.previousWakeup = signal.set_wakeup_fd(self.signalW, warn_on_full_buffer=False)
        signal_stack.pushSignals(_Recorder(self.table))
        self.addReader(self.signalR, self._dispatch)

    def uninstall(self):
        """Pop the handlers and restore the wakeup descriptor.  Block what must stay
        pending first: with ``SIG_DFL`` back, a held signal would kill us."""
        if self.signalR is None:
            return
        signal_stack.popSignals()
        signal.set_wakeup_fd(self.previousWakeup)
        self.removeReader(self.signalR)
        os.close(self.signalR)
        os.close(self.signalW)
        self.signalR = self.signalW = None

    def _dispatch(self):
        received = b''
        try:
            while True:
                chunk = os.read(self.signalR, 512)
                if not chunk:
                    break
                received += chunk
        except (BlockingIOError, InterruptedError):
            pass
        for signum in dict.fromkeys(received):
            action = self.table.get(signum)
            if action is None:
                continue
            try:
                action()
            except Exception:
                log.error("handling %s failed", signal.Signals(signum).name, exc_info=True)

    # -- ending -------------------------------------------------------------

    def close(self):
        self.uninstall()
        self.selector.close()

    def abandonInChild(self):
        """In a forked child: drop our copies of the loop's descriptors.

        The epoll instance is shared with the parent, so nothing is
        unregistered (``epoll_ctl(DEL)`` would remove the parent's
        registrations too): ``selector.close()`` closes its descriptor and
        nothing else, and marks the selector closed, so that no destructor
        closes that number again once the child has reused it.
        """
        self.selector.close()
        for fd in (self.signalR, self.signalW):
            if fd is not None:
                os.close(fd)
        self.signalR = self.signalW = None
        self.timers = []
