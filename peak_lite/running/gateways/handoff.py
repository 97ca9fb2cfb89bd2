"""Kept-alive connections that never wait behind a busy worker: the pool's hand-off queue.

A web server that keeps its upstream connections alive (nginx
``fastcgi_keep_conn on`` or HTTP/1.1 ``keepalive``) spreads them over the
workers, and a worker serves one request at a time.  Left alone, a request
written on a connection whose worker is busy waits for that worker while a
sibling sits idle, and dies with it if it is killed.

So the workers forked from one parent share a datagram socketpair, made in
the parent before the fork.  A worker whose request has run for a whole
``HANDOFF_EVERY`` period looks (one ``poll()``) at its other connections;
each one with bytes waiting, and no request or buffered bytes of its own, is
sent down the socketpair with ``SCM_RIGHTS`` and closed locally.  The
socket travels with its unread bytes.  Every idle worker watches the other
end; the kernel gives each datagram to exactly one reader, which serves the
request.  While nobody is idle the connection waits in the queue, owned by
no worker, so the first worker to become idle takes it, and a worker
SIGKILLed meanwhile cannot take it down.

The synchronous worker cannot look while the application runs, so the look
is driven by ``SIGALRM`` from an interval timer.  It is armed by the first
request that finds another connection open and disarmed by the first tick
that finds no request running: under load it just keeps ticking, and a
request costs a few attribute writes, no system call.  The handler does
bounded work (one ``poll()``, one ``sendmsg`` per waiting connection) on
the worker's own state, and only while a request is running inside the
application.  If the application owns ``SIGALRM`` (a handler other than the
default), the pool leaves it alone and hands nothing off.
"""

import logging
import select
import signal
import socket
import struct

from zope.interface import implementer

from peak_lite.running.gateways.interfaces import IHandoffPool

__all__ = ['HandoffPool', 'HANDOFF_EVERY']

log = logging.getLogger('peak_lite.running.gateways')

HANDOFF_EVERY = 0.01    # the timer's period: a request that has run through a
                        # whole period lets its worker's waiting connections go
RELOOK = 0.1            # a stopping worker looks again this often at what it leaves
                        # alone (one at its request limit may serve on: slotstatus.py)
KEPT = b'k'             # a datagram's tag: a kept-alive connection with a request waiting,
SILENT = b's'           # ... or one accepted whose request has not arrived, then its deadline
DEADLINE = struct.Struct('=d')


@implementer(IHandoffPool)
class HandoffPool:
    """See IHandoffPool.  The hand-off queue of one pool of workers.  Make it before forking them.

    ``give(sock, deadline=None)`` queues a connection for whichever worker
    reads next; ``take()`` returns one as ``(sock, deadline)``, or None.  In each worker process, ``install(workers,
    loop)`` watches the queue and the alarm, ``uninstall()`` undoes it.
    """

    def __init__(self):
        self.sender, self.receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sender.setblocking(False)
        self.receiver.setblocking(False)
        self.workers = ()
        self.handedOff = 0
        self._loop = None
        self._alarm = False     # True while this process's SIGALRM is ours
        self._armed = False     # the interval timer is running
        self._running = False   # a request is running in this process
        self._requests = 0      # requests started in this process
        self._seen = -1         # the request the last tick saw running

    # -- the queue -------------------------------------------------------

    def give(self, sock, deadline=None):
        """Queue ``sock`` for a sibling; True if it went (then close your copy).

        ``deadline`` (``time.monotonic()``) marks a connection accepted whose
        request has not arrived yet: the taker closes it if nothing has come
        by then, as the giver would have.
        """
        tag = KEPT if deadline is None else SILENT + DEADLINE.pack(deadline)
        try:
            socket.send_fds(self.sender, [tag], [sock.fileno()])
        except (BlockingIOError, InterruptedError):
            return False            # the queue is full: keep it and serve it yourself
        except OSError as e:
            log.warning("could not hand a connection to the pool: %s", e)
            return False
        return True

    def take(self):
        """``(sock, deadline)`` from the queue (see give()), or None when it is empty."""
        try:
            msg, fds, _flags, _addr = socket.recv_fds(self.receiver, 16, 4)
        except (BlockingIOError, InterruptedError):
            return None
        socks = [socket.socket(fileno=fd) for fd in fds]
        for extra in socks[1:]:     # never sent by give(); do not leak them
            extra.close()
        if not socks:
            return None
        silent = msg[:1] == SILENT and len(msg) == 1 + DEADLINE.size
        return socks[0], (DEADLINE.unpack(msg[1:])[0] if silent else None)

    def close(self):
        self.sender.close()
        self.receiver.close()

    def __del__(self):
        # A gateway built and dropped without serving (a --check, a test)
        # owns the pair all the same: close it without a ResourceWarning.
        try:
            self.close()
        except Exception:       # interpreter shutdown: the socket module may be gone
            pass

    # -- one worker process ----------------------------------------------

    def install(self, workers, loop):
        """In a worker process: adopt queued connections while idle, hand off while busy."""
        self.workers = tuple(workers)
        self._loop = loop
        self._watch()
        if signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGALRM, self._onAlarm)
            # Restart the application's interrupted system calls in the kernel:
            # C extensions that mishandle EINTR never see one from us.
            signal.siginterrupt(signal.SIGALRM, False)
            self._alarm = True

    def _watch(self):
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.add_reader(self.receiver.fileno(), self._adopt)

    def uninstall(self):
        self._running = False
        self._disarm()
        if self._alarm:
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            self._alarm = False
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self.receiver.fileno())
        self.workers = ()

    def requestStarted(self, worker):
        """A request begins in ``worker``.  The fast path: a few attribute writes.

        The timer is armed at the first request that finds another
        connection open and then left running; the first tick that finds no
        request running disarms it.  So a busy worker pays no system call
        per request, and an idle one gets at most one tick after its last
        request.
        """
        self._requests += 1
        self._running = True
        if not self._armed and self._alarm and (len(worker.connections) > 1
                                                 or len(self.workers) > 1):
            self._armed = True
            signal.setitimer(signal.ITIMER_REAL, HANDOFF_EVERY, HANDOFF_EVERY)

    def requestEnded(self):
        self._running = False

    def _disarm(self):
        if self._armed:
            self._armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)

    def _adopt(self):
        for worker in self.workers:
            if worker.stopping:
                # Leave it for a sibling that is not on its way out.  The queue
                # stays readable until one takes it: look again later, not at once.
                self._loop.remove_reader(self.receiver.fileno())
                self._loop.call_later(RELOOK, self._watch)
                return
        taken = self.take()
        if taken is not None:
            self.workers[0].adopt(*taken)

    def _onAlarm(self, signum, frame):
        if not self._running:
            self._disarm()
            return
        if self._requests != self._seen:
            # The first tick of this request: it may be about to end.  Look
            # at the next tick, once it has run a whole period.
            self._seen = self._requests
            return
        waiting = []
        poller = select.poll()
        for worker in self.workers:
            if worker.stopping:
                return      # a stopping worker serves its own connections in drain()
            for fd, conn in worker.connections.items():
                if conn is not worker.serving:
                    poller.register(fd, select.POLLIN)
                    waiting.append(fd)
        if not waiting:
            return
        for fd, _events in poller.poll(0):
            for worker in self.workers:
                conn = worker.connections.get(fd)
                if (conn is not None and conn is not worker.serving and conn.isIdle()
                        and not conn.buffered):
                    if self.give(conn.sock):
                        worker.release(fd, conn)
                        self.handedOff += 1
                    break
