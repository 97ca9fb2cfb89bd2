"""The main loop: IMainLoop on asyncio, its signal proxy and the default handler.

One asyncio loop belongs to one ``MainLoop``, made on first use of
``eventLoop`` and closed when ``run()`` returns (tasks cancelled, async
generators shut down); the next use starts a fresh one.  This is the loop
of commands and workers; the process manager, which forks, has its own.
"""

import asyncio
import logging
import os
import select
import selectors
import signal
import socket
import threading
import time

from zope.interface import implementer

from peak_lite.config import lookupProperty
from peak_lite.running.interfaces import EXIT_OK, IMainLoopExtras, ISignalHandler, RunningError
from peak_lite.running.interrupts import Interrupted, InterruptibleScope, inTwoPhaseCommit
from peak_lite.util import signal_stack

__all__ = ['MainLoop', 'StopOnStandardSignals', 'SIGNAL_HANDLER_PROPERTY', 'Interrupted']

log = logging.getLogger(__name__)

SIGNAL_HANDLER_PROPERTY = 'peak.running.mainLoop.signalHandler'

class _DeferringProxy:
    """What the loop pushes with pushSignals: each OS-level handler only queues.

    For every ``SIGxxx`` method of the real handler the proxy has a method of
    the same name.  Called by Python's signal machinery, it notes which task
    was running (for "stop after the current task") and queues the real
    method with ``call_soon_threadsafe``, which also writes the loop's
    self-pipe: the loop wakes even when idle in ``select()``, which PEP 475
    would otherwise silently restart.
    """

    def __init__(self, mainLoop, handler, loop):
        self._mainLoop = mainLoop
        self._handler = handler
        self._loop = loop
        for name in signal_stack.SIGNAL_NAMES:
            method = getattr(handler, name, None)
            if method is not None:
                setattr(self, name, self._deferrer(method, name))

    def _deferrer(self, method, name):
        interrupts = signal_stack.signalNumber(name) in {
            signal_stack.signalNumber(s) for s in getattr(self._handler, 'interruptSignals', ())}

        def defer(signum, frame):
            loop = self._loop
            if loop.is_closed():
                return
            interrupted = asyncio.current_task(loop)
            loop.call_soon_threadsafe(self._mainLoop._dispatchSignal, method, signum, interrupted)
            if (interrupts and self._mainLoop._interruptible.depth
                    and not inTwoPhaseCommit(frame)):
                raise Interrupted(signum)
        return defer

    def __repr__(self):
        return f"<deferring proxy for {self._handler!r}>"


@implementer(ISignalHandler)
class StopOnStandardSignals:
    """The default signal handler (see IMainLoop, ISignalHandler).

    SIGHUP: stop once the callback or task running when the signal arrived
    has completed.  SIGINT, SIGTERM: stop now; inside an ``interruptible()``
    section (a gateway serving a request) they also raise Interrupted there.
    """

    interruptSignals = ('SIGINT', 'SIGTERM')

    def __init__(self, mainLoop):
        self.mainLoop = mainLoop

    def SIGHUP(self, signum, frame):
        self.mainLoop.stopAfterCurrent()

    def SIGINT(self, signum, frame):
        self.mainLoop.stop()

    def SIGTERM(self, signum, frame):
        self.mainLoop.stop()


def _isHandlerFactory(ob):
    if isinstance(ob, type):
        return True
    return callable(ob) and not any(
        getattr(ob, name, None) is not None for name in signal_stack.SIGNAL_NAMES)


@implementer(IMainLoopExtras)
class MainLoop:
    """See IMainLoop.

    ``MainLoop(parentComponent=None, signalHandler=None)`` needs no configured
    root.  Without an explicit ``signalHandler`` the handler is the config
    property ``peak.running.mainLoop.signalHandler`` looked up from
    ``parentComponent`` (when there is one), else StopOnStandardSignals.  A
    handler given as a class, or as a callable with no ``SIGxxx`` methods, is
    a factory called with this main loop; anything else is used as is.
    """

    def __init__(self, parentComponent=None, signalHandler=None):
        self.parentComponent = parentComponent
        self._signalHandler = signalHandler
        self._loop = None
        self._selector = None   # the loop's own selector: public, so a child can close it
        self._loopPid = None
        self._running = False
        self._exitCode = EXIT_OK
        self._startedAt = None
        self._idleTimeout = 0
        self._runAtLeast = 0
        self._idleTimer = None
        self._wakeup = None     # (rsock, wsock, previous wakeup fd) while running
        self.lastActivity = None
        # The task that was running when the signal now being dispatched arrived.
        self.interruptedTask = None
        self._interruptible = InterruptibleScope()
        # True from stop() until run() returns: callbacks still due in the
        # last round (a listener that became readable, say) can decline work.
        self.stopRequested = False
        # The last signal dispatched while running (a number), or None.
        self.lastSignal = None

    # -- configuration ---------------------------------------------------

    @property
    def signalHandler(self):
        if self._signalHandler is None:
            handler = StopOnStandardSignals
            if self.parentComponent is not None:
                handler = lookupProperty(
                    self.parentComponent, SIGNAL_HANDLER_PROPERTY, default=StopOnStandardSignals)
            self._signalHandler = handler
        if _isHandlerFactory(self._signalHandler):
            self._signalHandler = self._signalHandler(self)
        return self._signalHandler

    @signalHandler.setter
    def signalHandler(self, handler):
        if self._running:
            raise RunningError("cannot change signalHandler while the main loop runs;"
                               " set it before run()")
        self._signalHandler = handler

    @property
    def eventLoop(self):
        """The asyncio loop; a fresh one in a process forked after it was made.

        A loop made before a fork belongs to the parent: the child never runs
        its callbacks, timers or readers (see ``forgetAfterFork``).
        """
        if self._loop is not None and self._loopPid != os.getpid() and not self._running:
            self.forgetAfterFork()
        if self._loop is None or self._loop.is_closed():
            self._selector = selectors.DefaultSelector()
            self._loop = asyncio.SelectorEventLoop(self._selector)
            self._loopPid = os.getpid()
        return self._loop

    # -- IMainLoop -------------------------------------------------------

    def run(self, stopAfter=0, idleTimeout=0, runAtLeast=0):
        """See IMainLoop."""
        if self._running:
            raise RunningError("MainLoop.run() called while it is already running")
        for name, value in (('stopAfter', stopAfter), ('idleTimeout', idleTimeout),
                            ('runAtLeast', runAtLeast)):
            if value is None or value < 0:
                raise RunningError(f"MainLoop.run(): {name} must be a number >= 0, got {value!r}")
        loop = self.eventLoop
        self._installWakeup(loop)
        try:
            pushed = self._pushSignals(loop)
        except BaseException:
            self._removeWakeup(loop)
            raise
        self._running = True
        self.stopRequested = False
        self.lastSignal = None
        self._exitCode = EXIT_OK
        self._startedAt = self.lastActivity = time.monotonic()
        self._idleTimeout, self._runAtLeast = idleTimeout, runAtLeast
        try:
            if stopAfter:
                loop.call_later(stopAfter, self.stop)
            if idleTimeout:
                self._scheduleIdleCheck()
            loop.run_forever()
            return self._exitCode
        finally:
            self._running = False
            self.lastActivity = self._startedAt = self._idleTimer = None
            self.interruptedTask = None
            if pushed is not None and signal_stack.depth() == pushed:
                # A forked child's bootstrap may already have popped our frame.
                signal_stack.popSignals()
            self._removeWakeup(loop)
            self._finishLoop(loop)

    def activityOccurred(self):
        """See IMainLoop."""
        if self._running:
            self.lastActivity = time.monotonic()

    def exitWith(self, exitCode):
        """See IMainLoop."""
        self._exitCode = exitCode
        self.stop()

    def stop(self):
        """See IMainLoop.  Does nothing while the loop is not running."""
        if self._running and self._loop is not None and not self._loop.is_closed():
            self.stopRequested = True
            self._loop.stop()

    # -- additions -------------------------------------------------------

    def interruptible(self):
        """Within this block the handler's ``interruptSignals`` raise Interrupted at once.

        Outside it every signal is only deferred to the loop.  A gateway wraps
        each request in it, so SIGTERM aborts the request instead of waiting.
        """
        return self._interruptible

    def stopAfterCurrent(self):
        """Stop once the task that was running when the signal arrived completes.

        Called from a signal method (which already runs after the interrupted
        callback returned).  With no task interrupted, stop now.
        """
        task = self.interruptedTask
        if task is None or task.done():
            self.stop()
        else:
            task.add_done_callback(lambda _task: self.stop())

    def close(self):
        """Close the asyncio loop if one was made and not run; run() closes its own."""
        if self._running:
            raise RunningError("MainLoop.close() called while it is running; call stop()")
        if self._loop is not None and not self._loop.is_closed():
            self._finishLoop(self._loop)
        self._loop = None

    def forgetAfterFork(self):
        """See IMainLoopExtras.  In a forked child: drop the parent's loop, never running it.

        Its epoll instance is shared with the parent, and ``loop.close()``
        unregisters the loop's self-pipe, which would remove the parent's
        registration too.  So the selector's descriptor number first gets a
        fresh epoll instance of the child's own (``dup2``); then the loop is
        closed as usual, touching only the child's copies.
        """
        loop, selector = self._loop, self._selector
        self._loop = self._selector = None
        self._removeWakeup(None)
        if selector is not None and selector.fileno() >= 0 and hasattr(select, 'epoll'):
            fresh = select.epoll()
            os.dup2(fresh.fileno(), selector.fileno(), inheritable=False)
            fresh.close()
        try:
            loop.close()
        except Exception:
            log.error("closing the main loop inherited across fork failed", exc_info=True)

    # -- internals -------------------------------------------------------

    def _pushSignals(self, loop):
        if threading.current_thread() is not threading.main_thread():
            log.debug("MainLoop.run() outside the main thread: signals are not handled")
            return None
        signal_stack.pushSignals(_DeferringProxy(self, self.signalHandler, loop))
        return signal_stack.depth()

    def _installWakeup(self, loop):
        """Point the C-level wakeup fd at a pipe the loop reads.

        The kernel may deliver a signal to any thread (an executor thread,
        say); then the main thread's select() is not interrupted and the
        Python-level handler would not run until the loop woke for another
        reason.  The wakeup fd is written by the C handler whatever thread
        took the signal, so the loop wakes and the handler runs promptly.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        rsock, wsock = socket.socketpair()
        rsock.setblocking(False)
        wsock.setblocking(False)
        previous = signal.set_wakeup_fd(wsock.fileno(), warn_on_full_buffer=False)
        self._wakeup = rsock, wsock, previous
        loop.add_reader(rsock.fileno(), self._drainWakeup, rsock)

    def _removeWakeup(self, loop):
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is None:
            return
        rsock, wsock, previous = wakeup
        signal.set_wakeup_fd(previous)
        if loop is not None and os.getpid() == self._loopPid:
            loop.remove_reader(rsock.fileno())
        # In a forked child, closing our copies is enough: an epoll
        # registration lives with the parent's open file description.
        rsock.close()
        wsock.close()

    @staticmethod
    def _drainWakeup(rsock):
        try:
            while rsock.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _dispatchSignal(self, method, signum, interrupted):
        self.lastSignal = signum
        self.interruptedTask = interrupted
        try:
            method(signum, None)
        except Exception:
            log.error("signal handler %r for %s failed", method,
                      signal.Signals(signum).name, exc_info=True)
        finally:
            self.interruptedTask = None

    def _scheduleIdleCheck(self):
        due = max(self.lastActivity + self._idleTimeout, self._startedAt + self._runAtLeast)
        self._idleTimer = self._loop.call_at(due, self._idleCheck)

    def _idleCheck(self):
        now = time.monotonic()
        if (now >= self.lastActivity + self._idleTimeout
                and now >= self._startedAt + self._runAtLeast):
            self.stop()
        else:
            self._scheduleIdleCheck()

    def _finishLoop(self, loop):
        if os.getpid() != self._loopPid:
            # We are a forked child unwinding the parent's loop.
            self.forgetAfterFork()
            return
        try:
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        except Exception:
            log.error("winding down the main loop's tasks failed", exc_info=True)
        finally:
            loop.close()
            self._loop = self._selector = None
