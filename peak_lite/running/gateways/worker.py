"""The pre-fork worker: one listening socket, many connections, one request at a time.

The worker registers the listener and every open connection as readers on
the main loop's asyncio loop.  When a connection has bytes, the reader
callback hands them to the connection, which serves a whole request
synchronously before returning (reading the rest of it with a bounded
timeout).  So SIGHUP through the main loop means "finish the current
request, then stop", and a kept-alive connection waiting for its next
request costs nothing: the worker goes on accepting others meanwhile.
While a request runs, the worker's pool (handoff.py) passes its other
connections that have a request waiting to an idle sibling.
"""

import errno
import logging
import select
import time

from zope.interface import implementer

from peak_lite.running.accesslog import getAccessLog
from peak_lite.running.gateways.handoff import RELOOK
from peak_lite.running.gateways.interfaces import IWorker
from peak_lite.running.gateways.requestscope import During, nothing, requestLine
from peak_lite.running.mainloop import Interrupted
from peak_lite.running.workerstatus import NullStatus

log = logging.getLogger('peak_lite.running.gateways')

__all__ = ['Worker', 'NullStatus']


RECV_SIZE = 262144
DRAIN_QUIET = 0.2      # seconds without a request that end a graceful drain
DRAIN_LIMIT = 5.0      # the longest a graceful drain may take
ACCEPT_BATCH = 16      # connections accepted in one loop turn, while none has a request
# accept() failures that say the system, not the peer, is short of something:
# stop watching the listener for a while instead of spinning on it.
EXHAUSTED = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))
# ... and those that only mean this one connection went away first.
ROUTINE = frozenset((errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ENETDOWN,
                     errno.ENOPROTOOPT, errno.EHOSTDOWN, errno.ENONET, errno.EHOSTUNREACH,
                     errno.EOPNOTSUPP, errno.ENETUNREACH))
BACKOFF_FIRST = 0.01   # the first pause after an exhausted accept(), doubled up to
BACKOFF_MAX = 1.0
LOG_EVERY = 10.0       # at most one line per this many seconds about exhausted accepts


@implementer(IWorker)
class Worker:
    """See IWorker.

    ``Worker(listener, connectionFactory, app, mainLoop, status=None,
    readTimeout=30.0, idleTimeout=0, pool=None)``: ``idleTimeout`` (0 = never)
    closes connections idle that long between requests; one that sends nothing
    at all closes after ``readTimeout``.  ``pool``: the siblings' HandoffPool.
    """

    def __init__(self, listener, connectionFactory, app, mainLoop, status=None,
                 readTimeout=30.0, idleTimeout=0, pool=None):
        self.listener = listener
        self.connectionFactory = connectionFactory
        self.app = app
        self.mainLoop = mainLoop
        self.status = NullStatus() if status is None else status
        self.readTimeout = readTimeout
        self.idleTimeout = idleTimeout
        self.pool = pool
        self.accessLog = getAccessLog()     # once: off, a request pays a None test
        self._interruptible = getattr(mainLoop, 'interruptible', None)
        self.connections = {}
        self._view = memoryview(bytearray(RECV_SIZE))
        self.serving = None         # the connection whose request is running
        self.draining = False
        self.requestsServed = 0
        self._loop = None
        self._sweeper = None
        self._fresh = {}            # fd -> (conn, deadline): accepted, no byte read yet
        self._freshSweep = None
        self._backoff = 0.0         # seconds the listener is left alone after EMFILE
        self._resume = None
        self._lastExhaustedLog = None
        self._exhaustedSince = 0    # exhausted accepts not logged since the last line

    def start(self):
        """See IWorker."""
        self._loop = self.mainLoop.eventLoop
        self.listener.setblocking(False)
        self._loop.add_reader(self.listener.fileno(), self._accept)
        if self._sweepEvery():
            self._sweeper = self._loop.call_later(self._sweepEvery(), self._sweep)

    @property
    def stopping(self):
        """On its way out, or at its request limit: no more accepts; responses close."""
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
        ``limit`` seconds have passed.  Then it closes the rest.  A
        connection accepted whose first byte has not arrived yet is no idle
        link: its request is on its way, so while one is open the drain
        waits up to ``limit`` for it, not ``quiet``.

        With no connection of its own left it still empties the pool's queue:
        a connection left there dies unread with the pool's last process (its
        client sees a reset), and each worker looks after its last hand-off.
        """
        self.draining = True
        end = time.monotonic() + limit
        lastRequest = time.monotonic()
        # poll(), not select(): descriptors past 1024 are routine in a busy worker.
        while self.connections or self._takeQueued():
            now = time.monotonic()
            pending = any(fd in self._fresh for fd in self.connections)
            wait = (end if pending else min(end, lastRequest + quiet)) - now
            if wait <= 0:
                break
            poller = select.poll()
            for fd in self.connections:
                poller.register(fd, select.POLLIN)
            queue = self.pool.receiver.fileno() if self.pool is not None else -1
            if queue >= 0:
                # Connections a sibling handed over just before the stop: ours now.
                poller.register(queue, select.POLLIN)
            try:
                ready = poller.poll(wait * 1000)
            except InterruptedError:
                continue
            for fd, _events in ready:
                conn = self.connections.get(fd)
                if conn is not None:
                    lastRequest = time.monotonic()
                    self._readable(fd, conn)
                elif fd == queue and self._takeQueued():
                    lastRequest = time.monotonic()

    def _takeQueued(self):
        """Take one connection waiting in the pool's queue, if any; True if one was."""
        taken = self.pool.take() if self.pool is not None else None
        if taken is not None:
            self._take(*taken)
        return taken is not None

    def close(self):
        """See IWorker."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self.listener.fileno())
            for fd in list(self.connections):
                loop.remove_reader(fd)
            for timer in (self._sweeper, self._freshSweep, self._resume):
                if timer is not None:
                    timer.cancel()
        self._fresh.clear()
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

    def requestStarted(self, response=None):
        """See IWorker: note activity and return the status's busy() context.

        ``response`` (a WSGIRequest) names the request for status pages, and
        its status code is counted when the request ends.

        While the request runs, SIGTERM and SIGINT interrupt it (the main
        loop's ``interruptible()``): the app's transaction aborts and the
        connection closes.
        """
        self.requestsServed += 1
        self.mainLoop.activityOccurred()
        if self._fresh and self.pool is not None:
            self._passSilent()
        busy = self.status.busy(None if response is None else requestLine(response.environ))
        interruptible = self._interruptible
        if interruptible is None:
            if self.pool is None and response is None:
                return busy
            interruptible = nothing
        return During(busy, interruptible(), self, response)

    def acceptNow(self):
        """Accept what waits now, from the running loop, without waiting for its next turn."""
        self._accept()

    def adopt(self, sock, deadline=None):
        """Serve ``sock``, a connection a sibling handed over (see handoff.py).

        ``deadline``: it has sent nothing yet, and is closed if nothing comes by then.
        """
        self._take(sock, deadline)

    def _passSilent(self):
        # A request is about to run.  Connections accepted whose request has not
        # arrived yet, queued in the pool, wait for an idle sibling, not for it,
        # and do not die if we are killed.  A stopping worker keeps them (its
        # siblings may be stopping too); drain() serves them.
        if self.stopping:
            return
        for fd, (conn, deadline) in list(self._fresh.items()):
            if conn is not self.serving and self.connections.get(fd) is conn:
                if not self.pool.give(conn.sock, deadline):
                    return
                self.release(fd, conn)

    def release(self, fd, conn):
        """Let go of an idle connection handed to a sibling: forget it, close our copy.

        Not ``conn.close()``: that may shut the socket down or read from it,
        and the sibling now owns both.
        """
        self._forget(fd)
        self._fresh.pop(fd, None)
        try:
            conn.sock.close()
        except OSError:
            log.debug("closing a handed-off connection failed", exc_info=True)

    # -- loop callbacks ---------------------------------------------------

    def _accept(self):
        # Several connections per turn, but a turn serves at most one request:
        # a stop (deferred to the loop) still waits for one request at most,
        # and connections not yet served stay in the backlog for idle siblings.
        # Stopping (or at its request limit) it takes none; it looks again later.
        served = self.requestsServed
        if self.status.stopping and self._loop is not None:
            self._loop.remove_reader(self.listener.fileno())
            if self._resume is None:
                self._resume = self._loop.call_later(RELOOK, self._resumeAccepting)
            return
        for _ in range(ACCEPT_BATCH):
            if getattr(self.mainLoop, 'stopRequested', False) or self._loop is None:
                return  # stopping: leave it in the backlog for a sibling or our successor
            try:
                sock, _addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return      # a sibling worker took it
            except OSError as e:
                self._acceptFailed(e)
                return
            self._backoff = 0.0
            self._take(sock, time.monotonic() + self.readTimeout if self.readTimeout
                       else float('inf'))
            if self.requestsServed != served:
                return

    def _acceptFailed(self, e):
        if e.errno in ROUTINE:
            log.debug("accept(): %s", e)    # the peer gave up first: nothing to do
            return
        # Out of descriptors or memory: the connection stays in the backlog
        # for a sibling or for later.  Stop watching the listener for a
        # growing while, or the level-triggered loop spins on it.
        self._backoff = min(BACKOFF_MAX, max(BACKOFF_FIRST, 2 * self._backoff))
        if e.errno not in EXHAUSTED:
            log.error("accept() on the listening socket failed: %s", e)
        else:
            self._logExhausted(e)
        loop = self._loop
        if loop is not None and not loop.is_closed() and self._resume is None:
            loop.remove_reader(self.listener.fileno())
            self._resume = loop.call_later(self._backoff, self._resumeAccepting)

    def _logExhausted(self, e):
        now = time.monotonic()
        if self._lastExhaustedLog is not None and now - self._lastExhaustedLog < LOG_EVERY:
            self._exhaustedSince += 1
            return
        more = (f" ({self._exhaustedSince} more since the last report)"
                if self._exhaustedSince else "")
        log.error("accept() on the listening socket failed: %s%s; pausing accepts for "
                  "%.2fs (raise the open-files limit, or lower the connections kept open)",
                  e, more, self._backoff)
        self._lastExhaustedLog = now
        self._exhaustedSince = 0

    def _resumeAccepting(self):
        self._resume = None
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.add_reader(self.listener.fileno(), self._accept)

    def _take(self, sock, deadline=None):
        # deadline: accepted, nothing read yet; closed if still silent then.
        sock.setblocking(False)
        try:
            conn = self.connectionFactory(sock, self)
        except Exception:
            log.error("could not set up a new connection", exc_info=True)
            sock.close()
            return
        fd = sock.fileno()
        self.connections[fd] = conn
        if deadline is not None:
            self._watchFresh(fd, conn, deadline)
        # A web server usually writes its request right after connecting (and a
        # handed-over connection has one waiting): read it now instead of going
        # round the loop first.
        self._receive(conn)
        if conn.closed:
            self.connections.pop(fd, None)      # never registered with the loop
            self._fresh.pop(fd, None)
        elif (self.connections.get(fd) is conn and self._loop is not None
              and not self._loop.is_closed()):
            self._loop.add_reader(fd, self._readable, fd, conn)

    def _readable(self, fd, conn):
        if self.connections.get(fd) is not conn:
            return      # handed to a sibling meanwhile; the fd may be reused
        self._receive(conn)
        if conn.closed:
            self._forget(fd)

    def _receive(self, conn):
        try:
            # Into one buffer kept for the worker's life: a fresh 256 KB per
            # read costs malloc an mmap/mremap/munmap per request whenever its
            # dynamic threshold sits below that size.
            data = bytes(self._view[:conn.sock.recv_into(self._view)])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            log.debug("connection read failed: %s", e)
            data = b''
        if self._fresh:
            self._fresh.pop(conn.sock.fileno(), None)
        if data:
            self.serving = conn
            try:
                conn.dataReceived(data)
            except Interrupted as e:
                log.warning("request interrupted by %s: closing its connection", e)
                conn.close()
            except Exception:
                log.error("connection failed; closing it", exc_info=True)
                conn.close()
            finally:
                self.serving = None
        else:
            conn.connectionLost()

    # -- connections that never say anything -------------------------------

    def _watchFresh(self, fd, conn, deadline):
        """Close ``conn`` if it sends no byte by ``deadline`` (before any sniffing)."""
        self._fresh[fd] = (conn, deadline)
        if (self.readTimeout and self._freshSweep is None and self._loop is not None
                and not self._loop.is_closed()):
            self._freshSweep = self._loop.call_later(self.readTimeout / 4, self._sweepFresh)

    def _sweepFresh(self):
        self._freshSweep = None
        now = time.monotonic()
        for fd, (conn, deadline) in list(self._fresh.items()):
            if self.connections.get(fd) is not conn or conn.closed:
                del self._fresh[fd]
            elif deadline <= now:
                del self._fresh[fd]
                log.info("closing a connection that sent nothing for %.1fs", self.readTimeout)
                conn.close()
                self._forget(fd)
        if (self._fresh and self.readTimeout and self._loop is not None
                and not self._loop.is_closed()):
            self._freshSweep = self._loop.call_later(self.readTimeout / 4, self._sweepFresh)

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
