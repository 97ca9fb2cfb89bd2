"""Blocking-with-deadline I/O on non-blocking sockets, in as few system calls as possible.

Worker sockets stay non-blocking so the event loop can watch them.  While a
request is being served the worker reads and writes synchronously: it tries
the call first and polls only when the kernel says it would block, so the
common case costs one system call.
"""

import select
import time

from peak_lite.running.gateways.interfaces import ClientTimeout, ConnectionClosed
from peak_lite.running.gateways.wsgi import markTransmitError

__all__ = ['recvSome', 'sendAll']

_POLLIN = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP
_POLLOUT = select.POLLOUT | select.POLLERR | select.POLLHUP


def _wait(sock, events, timeout, what):
    poller = select.poll()
    poller.register(sock, events)
    # poll() is restarted by PEP 475 after a signal with the time left, which
    # is what we want here: a signal is acted on once the request is done.
    if not poller.poll(max(0.0, timeout) * 1000):
        raise ClientTimeout(f"the peer sent nothing for {timeout:.1f}s while {what}")


def recvSome(sock, timeout, size=262144, what='reading a request'):
    """Return the next bytes from ``sock``, waiting at most ``timeout`` seconds.

    Raises ConnectionClosed on end of file and ClientTimeout on a timeout.
    """
    try:
        data = sock.recv(size)
    except BlockingIOError:
        _wait(sock, _POLLIN, timeout, what)
        data = sock.recv(size)
    if not data:
        raise ConnectionClosed(f"the peer closed the connection while {what}")
    return data


def sendAll(sock, data, timeout, limit=None):
    """Send all of ``data``; raise OSError (tagged as a transmit error) if the peer is gone.

    ``timeout`` bounds each wait for the peer to drain its window; ``limit``,
    if given, bounds the whole call, so a peer that reads a trickle cannot
    hold the sender either.
    """
    try:
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        if sent == len(data):
            return
        view = memoryview(data)[sent:]
        now = time.monotonic()
        deadline = now + timeout
        end = None if limit is None else now + limit
        while view:
            try:
                sent = sock.send(view)
            except BlockingIOError:
                sent = 0
            if sent:
                view = view[sent:]
                deadline = time.monotonic() + timeout
            elif view:
                now = time.monotonic()
                left = deadline - now
                if left <= 0:
                    raise TimeoutError(f"the peer read nothing for {timeout:.1f}s")
                if end is not None:
                    if now >= end:
                        raise TimeoutError(
                            f"the peer read too slowly: {len(view)} bytes still unsent"
                            f" after {limit:.1f}s")
                    left = min(left, end - now)
                _wait(sock, _POLLOUT, left, 'writing a response')
    except ClientTimeout as e:
        raise markTransmitError(TimeoutError(str(e))) from None
    except OSError as e:
        raise markTransmitError(e)
