"""A connection that picks FastCGI or HTTP from its first byte.

Every FastCGI record starts with the protocol version, 1; an HTTP request
starts with a method name.  So one listening socket, or several handed over
by a process manager, can serve both: nginx's ``fastcgi_pass`` and a plain
``curl``.  Deciding costs no system call: it looks at data already read.
"""

import time

from zope.interface import implementer, provider

from peak_lite.running.gateways.fcgi_protocol import FCGI_VERSION_1
from peak_lite.running.gateways.fcgi_server import FastCGIConnection
from peak_lite.running.gateways.http_server import HTTPConnection
from peak_lite.running.gateways.interfaces import IConnection, IConnectionFactory

__all__ = ['SniffingConnection', 'FCGI_VERSION_1']

HTTP_IDLE_TIMEOUT = 15.0


@provider(IConnectionFactory)
@implementer(IConnection)
class SniffingConnection:
    """See IConnection.  Becomes a FastCGIConnection or an HTTPConnection on first data."""

    HTTP_IDLE_TIMEOUT = HTTP_IDLE_TIMEOUT

    def __init__(self, sock, worker):
        self.sock = sock
        self.worker = worker
        self.real = None
        self._closed = False
        self._since = time.monotonic()

    @property
    def lastActive(self):
        return self.real.lastActive if self.real is not None else self._since

    @property
    def closed(self):
        return self.real.closed if self.real is not None else self._closed

    @property
    def idleTimeout(self):
        """Idle HTTP clients are let go; a web server's kept-alive FastCGI link is not."""
        if isinstance(self.real, HTTPConnection):
            return self.worker.idleTimeout or self.HTTP_IDLE_TIMEOUT
        return self.worker.idleTimeout

    def dataReceived(self, data):
        if self.real is None:
            factory = FastCGIConnection if data[0] == FCGI_VERSION_1 else HTTPConnection
            self.real = factory(self.sock, self.worker)
        self.real.dataReceived(data)

    def connectionLost(self):
        if self.real is not None:
            self.real.connectionLost()
        else:
            self.close()

    def isIdle(self):
        return self.real is None or self.real.isIdle()

    @property
    def buffered(self):
        return 0 if self.real is None else self.real.buffered

    def close(self):
        if self.real is not None:
            self.real.close()
        elif not self._closed:
            self._closed = True
            self.sock.close()
