"""The pre-fork worker: one listening socket, many connections, one request at a time.

The worker registers the listener and every open connection as readers on
the main loop's asyncio loop.  When a connection has bytes, the reader
callback hands them to the connection, which serves a whole request
synchronously before returning (reading the rest of it with a bounded
timeout).  So SIGHUP through the main loop means "finish the current
request, then stop", and a kept-alive connection waiting for its next
request costs nothing: the worker goes on accepting others meanwhile.
"""

import logging
import select
import sys
import time

from zope.interface import implementer

from peak_lite.running.gateways.interfaces import IWorker
from peak_lite.running.mainloop import Interrupted
from peak_lite.running.workerstatus import NullStatus

log = logging.getLogger('peak_lite.running.gateways')

__all__ = ['Worker', 'NullStatus']

RECV_SIZE = 262144
DRAIN_QUIET = 0.2      # seconds without a request that end a graceful drain
DRAIN_LIMIT = 5.0      # the longest a graceful drain may take


class _During:
    """``with busy, interruptible:`` as one context manager (a plain class: cheaper)."""

    __slots__ = ('busy', 'interruptible')

    def __init__(self, busy, interruptible):
        self.busy = busy
        self.interruptible = interruptible

    def __enter__(self):
        self.busy.__enter__()
        try:
            self.interruptible.__enter__()
        except BaseException:
            self.busy.__exit__(*sys.exc_info())
            raise

    def __exit__(self, excType, exc, tb):
        try:
            suppressed = self.interruptible.__exit__(excType, exc, tb)
        except BaseException:
            if not self.busy.__exit__(*sys.exc_info()):
                raise
            return True
        if suppressed:
            excType = exc = tb = None
        return self.busy.__exit__(excType, exc, tb) or suppressed


@implementer(IWorker)
class Worker:
    """See IWorker.

    ``Worker(listener, connectionFactory, app, mainLoop, status=None,
    readTimeout=30.0, idleTimeout=0)``: ``idleTimeout`` (0 = never) closes
    connections that stay idle between requests for that long.
    """

    def __init__(self, listener, connectionFactory, app, mainLoop, status=None,
                 readTimeout=30.0, idleTimeout=0):
        self.listener = listener
        self.connectionFactory = connectionFactory
        self.app = app
        self.mainLoop = mainLoop
        self.status = NullStatus() if status is None else status
        self.readTimeout = readTimeout
        self.idleTimeout = idleTimeout
        self.connections = {}
        self.draining = False
        self.requestsServed = 0
        self._loop = None
        self._sweeper = None

    def start(self):
        """See IWorker."""
        self._loop = self.mainLoop.eventLoop
        self.listener.setblocking(False)
        self._loop.add_reader(self.listener.fileno(), self._accept)
        if self._sweepEvery():
            self._sweeper = self._loop.call_later(self._sweepEvery(), self._sweep)

    @property
    def stopping(self):
        """True once this worker is on its way out: responses then close their connection."""
        return (self.draining or getattr(self.mainLoop, 'stopRequested', False)
                or self.status.stopping)

    def drain(self, quiet=DRAIN_QUIET, limit=DRAIN_LIMIT):
        """On a graceful stop, serve what comes on open connections until they fall quiet.

        A web server that keeps FastCGI connections alive may write its next
        request on one at any moment, and nginx never retries a POST; closing
        such a connection under it turns that request into an error.  So the
        stopping worker (no longer accepting) keeps serving its open
        connections, closing each after its response so it is not reused,
        until none is left, none has had a request for ``quiet`` seconds, or
        ``limit`` seconds have passed.  Then it closes the rest.
        """
        self.draining = True
        end = time.monotonic() + limit
        lastRequest = time.monotonic()
        while self.connections:
            now = time.monotonic()
            wait = min(end, lastRequest + quiet) - now
            if wait <= 0:
                break
            ready = select.select(list(self.connections), [], [], wait)[0]
            for fd in ready:
                conn = self.connections.get(fd)
                if conn is not None:
                    lastRequest = time.monotonic()
                    self._readable(fd, conn)

    def close(self):
        """See IWorker."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self.listener.fileno())
            for fd in list(self.connections):
                loop.remove_reader(fd)
            if self._sweeper is not None:
                self._sweeper.cancel()
        for conn in list(self.connections.values()):
            conn.close()
        self.connections.clear()
        self._loop = None

    def callLater(self, delay, func):
        """Run ``func`` after ``delay`` seconds on the main loop; return the handle.

        When the loop is gone (a worker draining after it stopped), None.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            return None
        return loop.call_later(delay, func)

    def requestStarted(self):
        """See IWorker: note activity and return the status's busy() context.

        While the request runs, SIGTERM and SIGINT interrupt it (the main
        loop's ``interruptible()``): the app's transaction aborts and the
        connection closes.
        """
        self.requestsServed += 1
        self.mainLoop.activityOccurred()
        interruptible = getattr(self.mainLoop, 'interruptible', None)
        if interruptible is None:
            return self.status.busy()
        return _During(self.status.busy(), interruptible())

    # -- loop callbacks ---------------------------------------------------

    def _accept(self):
        if getattr(self.mainLoop, 'stopRequested', False):
            return      # stopping: leave it in the backlog for a sibling or our successor
        try:
            sock, _addr = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return      # a sibling worker took it
        except OSError as e:
            # EMFILE and friends: the connection stays in the backlog for a
            # sibling or for later; do not spin on it.
            log.error("accept() on the listening socket failed: %s", e)
            return
        sock.setblocking(False)
        try:
            conn = self.connectionFactory(sock, self)
        except Exception:
            log.error("could not set up a new connection", exc_info=True)
            sock.close()
            return
        fd = sock.fileno()
        self.connections[fd] = conn
        # A web server usually writes its request right after connecting:
        # read it now instead of going round the loop first.
        self._receive(conn)
        if conn.closed:
            self.connections.pop(fd, None)      # never registered with the loop
        elif self._loop is not None:
            self._loop.add_reader(fd, self._readable, fd, conn)

    def _readable(self, fd, conn):
        self._receive(conn)
        if conn.closed:
            self._forget(fd)

    def _receive(self, conn):
        try:
            data = conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            log.debug("connection read failed: %s", e)
            data = b''
        if data:
            try:
                conn.dataReceived(data)
            except Interrupted as e:
                log.warning("request interrupted by %s: closing its connection", e)
                conn.close()
            except Exception:
                log.error("connection failed; closing it", exc_info=True)
                conn.close()
        else:
            conn.connectionLost()

    def forget(self, fd):
        """Stop watching the connection on ``fd`` (it closed itself)."""
        self._forget(fd)

    def _forget(self, fd):
        if self.connections.pop(fd, None) is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(fd)

    def _sweepEvery(self):
        # Connections may carry their own idle limit (a sniffed HTTP client does).
        limit = self.idleTimeout or getattr(self.connectionFactory, 'HTTP_IDLE_TIMEOUT', 0)
        return limit / 2

    def _sweep(self):
        now = time.monotonic()
        for fd, conn in list(self.connections.items()):
            limit = getattr(conn, 'idleTimeout', self.idleTimeout)
            if limit and conn.lastActive < now - limit and conn.isIdle():
                conn.close()
                self._forget(fd)
        self._sweeper = self._loop.call_later(self._sweepEvery(), self._sweep)
