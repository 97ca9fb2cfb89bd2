"""The pre-fork worker: one listening socket, many connections, one request at a time.

The worker registers the listener and every open connection as readers on
the main loop's asyncio loop.  When a connection has bytes, the reader
callback hands them to the connection, which serves a whole request
synchronously before returning (reading the rest of it with a bounded
timeout).  So SIGHUP through the main loop means "finish the current
request, then stop", and a kept-alive connection waiting for its next
request costs nothing: the worker goes on accepting others meanwhile.
"""

import contextlib
import logging
import time

from zope.interface import implementer

from peak_lite.running.gateways.interfaces import IWorker
from peak_lite.running.mainloop import Interrupted
from peak_lite.running.workerstatus import NullStatus

log = logging.getLogger('peak_lite.running.gateways')

__all__ = ['Worker', 'NullStatus']

RECV_SIZE = 262144


@contextlib.contextmanager
def _during(busy, interruptible):
    with busy, interruptible:
        yield


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
        return _during(self.status.busy(), interruptible())

    # -- loop callbacks ---------------------------------------------------

    def _accept(self):
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
        self._readable(fd, conn)
        if not conn.closed and self._loop is not None:
            self._loop.add_reader(fd, self._readable, fd, conn)

    def _readable(self, fd, conn):
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
        if conn.closed:
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
