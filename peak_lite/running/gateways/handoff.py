"""Kept-alive connections that never wait behind a busy worker: the pool's hand-off queue.

A web server that keeps its upstream connections alive (nginx
``fastcgi_keep_conn on`` or HTTP/1.1 ``keepalive``) spreads them over the
workers, and a worker serves one request at a time.  Left alone, a request
written on a connection whose worker is busy waits for that worker while a
sibling sits idle, and dies with it if it is killed.

So the workers forked from one parent share a datagram socketpair, made in
the parent before the fork.  A worker whose request has run for
``HANDOFF_AFTER`` seconds looks (one ``poll()``) at its other connections;
each one with bytes waiting, and no request of its own under way, is sent
down the socketpair with ``SCM_RIGHTS`` and closed locally.  The socket
travels with its unread bytes.  Every idle worker watches the other end; the
kernel gives each datagram to exactly one reader, which serves the request.
While nobody is idle the connection waits in the queue, owned by no worker,
so the first worker to become idle takes it, and a worker SIGKILLed
meanwhile cannot take it down.

The synchronous worker cannot look while the application runs, so the look
is driven by ``SIGALRM`` from an interval timer armed only while a request
runs and only when there is something to look at.  A request shorter than
``HANDOFF_AFTER`` costs two ``setitimer`` calls and nothing else: the fast
path never moves a connection.  The handler does bounded work (one
``poll()``, one ``sendmsg`` per waiting connection) on the worker's own
state, and only while a request is running inside the application.  If the
application owns ``SIGALRM`` (a handler other than the default), the pool
leaves it alone and hands nothing off.
"""

import logging
import select
import signal
import socket

__all__ = ['HandoffPool', 'HANDOFF_AFTER', 'HANDOFF_EVERY']

log = logging.getLogger('peak_lite.running.gateways')

HANDOFF_AFTER = 0.01    # a request this old lets its worker's waiting connections go
HANDOFF_EVERY = 0.01    # and they are looked at again this often while it runs


class HandoffPool:
    """The hand-off queue of one pool of workers.  Make it before forking them.

    ``give(sock)`` queues a connection for whichever worker reads next;
    ``take()`` returns one, or None.  In each worker process, ``install(workers,
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
        self._armed = False

    # -- the queue -------------------------------------------------------

    def give(self, sock):
        """Queue ``sock`` for a sibling; True if it went (then close your copy)."""
        try:
            socket.send_fds(self.sender, [b'c'], [sock.fileno()])
        except (BlockingIOError, InterruptedError):
            return False            # the queue is full: keep it and serve it yourself
        except OSError as e:
            log.warning("could not hand a connection to the pool: %s", e)
            return False
        return True

    def take(self):
        """A connection from the queue, or None when it is empty."""
        try:
            _msg, fds, _flags, _addr = socket.recv_fds(self.receiver, 16, 4)
        except (BlockingIOError, InterruptedError):
            return None
        socks = [socket.socket(fileno=fd) for fd in fds]
        for extra in socks[1:]:     # never sent by give(); do not leak them
            extra.close()
        return socks[0] if socks else None

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
        loop.add_reader(self.receiver.fileno(), self._adopt)
        if signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGALRM, self._onAlarm)
            # Restart the application's interrupted system calls in the kernel:
            # C extensions that mishandle EINTR never see one from us.
            signal.siginterrupt(signal.SIGALRM, False)
            self._alarm = True

    def uninstall(self):
        self.requestEnded()
        if self._alarm:
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            self._alarm = False
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self.receiver.fileno())
        self.workers = ()

    def requestStarted(self, worker):
        """A request begins in ``worker``: arm the timer if another connection could wait."""
        if self._alarm and not self._armed and (len(worker.connections) > 1
                                                 or len(self.workers) > 1):
            signal.setitimer(signal.ITIMER_REAL, HANDOFF_AFTER, HANDOFF_EVERY)
            self._armed = True

    def requestEnded(self):
        if self._armed:
            self._armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)

    def _adopt(self):
        for worker in self.workers:
            if worker.stopping:
                return      # leave it for a sibling that is not on its way out
        sock = self.take()
        if sock is not None:
            self.workers[0].adopt(sock)

    def _onAlarm(self, signum, frame):
        if not self._armed:
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
            self.requestEnded()
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
