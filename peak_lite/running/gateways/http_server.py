"""HTTP/1.1: one connection's request cycle, keep-alive and pipelining included.

Requests are parsed by ``http_parse.RequestReader`` (llhttp, a C parser).
Partial request heads wait in the worker's loop (bounded by the worker's
idle sweep), so a slow client never holds the worker.  Once a whole head is
in, the request is served synchronously: the body streams into
``wsgi.input`` on demand, with the read timeout bounding each wait, and
``Expect: 100-continue`` is answered when the application first reads.
A body the application left unread is drained inside the request's busy
section, within ``drainTimeout`` seconds and ``maxDrain`` bytes; past
either, the connection closes instead.
"""

import logging
import socket
import sys
import time

from zope.interface import implementer

from peak_lite.running.gateways import speedups
from peak_lite.running.gateways.http_parse import END, Refusal, Request, RequestReader
from peak_lite.running.gateways.interfaces import GatewayError, IConnection, ProtocolError
from peak_lite.running.gateways.sockio import recvSome, sendAll
from peak_lite.running.gateways.wsgi import ResponseError, WSGIRequest, baseEnviron, headLines

log = logging.getLogger('peak_lite.running.gateways')

__all__ = ['HTTPConnection', 'HTTPResponse', 'HTTPInput']

MAX_DRAIN = 64 * 1024       # unread body we will still read to keep the connection
DRAIN_TIMEOUT = 2.0         # the longest we spend reading it

_REASONS = {400: 'Bad Request', 405: 'Method Not Allowed', 414: 'URI Too Long',
            431: 'Request Header Fields Too Large', 505: 'HTTP Version Not Supported'}


class HTTPInput:
    """``wsgi.input`` reading the request body off the connection as the application asks."""

    def __init__(self, conn, request):
        self._conn = conn
        self._buf = bytearray()
        self.eof = False
        self.error = None
        # RFC 9110 10.1.1: an HTTP/1.0 client's expectation is ignored.
        self._continue = (request.expectContinue and request.hasBody
                          and request.version == '1.1')
        self.received = 0

    def _more(self, timeout=None):
        """Move the next piece of body into the buffer; False at its end."""
        if self.eof:
            return False
        if self._continue:
            self._continue = False
            self._conn.sendInformational(b'HTTP/1.1 100 Continue\r\n\r\n')
        queue = self._conn.reader.queue
        while not queue:
            if self._conn.reader.finished:
                self.eof = True
                return False
            self._conn.receiveMore(timeout)
        item = queue[0]
        if item is END:
            queue.popleft()
            self.eof = True
            return False
        if type(item) is bytes:
            queue.popleft()
            self._buf += item
            self.received += len(item)
            return True
        self.eof = True
        if isinstance(item, Refusal):
            queue.popleft()
            self.error = item
            raise item      # the body's framing broke: a 400, never the app's fault
        return False        # a Request: cannot happen before END

    def read(self, size=-1):
        if size is None or size < 0:
            while self._more():
                pass
            size = len(self._buf)
        while len(self._buf) < size and self._more():
            pass
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data

    def readline(self, size=-1):
        if size is None:
            size = -1
        while True:
            end = self._buf.find(b'\n')
            if end >= 0 or (0 <= size <= len(self._buf)) or not self._more():
                break
        end = len(self._buf) if end < 0 else end + 1
        if size >= 0:
            end = min(end, size)
        data = bytes(self._buf[:end])
        del self._buf[:end]
        return data

    def readlines(self, hint=-1):
        lines, total = [], 0
        for line in self:
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def drain(self, limit, timeout):
        """Read and drop the rest of the body; False past ``limit`` bytes or ``timeout`` s."""
        self._continue = False
        self._buf.clear()
        end = time.monotonic() + timeout
        start = self.received
        try:
            while True:
                left = end - time.monotonic()
                if left <= 0 or self.received - start > limit:
                    return False
                if not self._more(left):
                    return True
                self._buf.clear()
        except GatewayError:
            return False


class HTTPResponse(WSGIRequest):
    """WSGIRequest framed as HTTP/1.1: Content-Length, chunked, or close-delimited."""

    def __init__(self, app, environ, conn, request, body):
        super().__init__(app, environ)
        self.conn = conn
        self.request = request
        self.body = body
        self.mustClose = not request.keepAlive
        self._mode = None       # 'length', 'chunked', 'close' or None (no body)
        self._left = 0

    def frameHead(self, status, headers, body):
        request = self.request
        compiled = speedups.compiled
        if compiled is not None and request.method != 'HEAD':
            # The common case (a Content-Length declared), compiled; None: the rest.
            close = self._mustClose()
            found = compiled.httpHead(status, headers, body, close)
            if found is not None:
                self._mode = 'length'
                head, self._left = found
                self.mustClose = close
                return head
        code = int(status[:3])
        if code < 200:
            raise ResponseError(f"WSGI status {status!r}: the gateway sends 1xx responses itself")
        # RFC 9110 8.6: never a Content-Length on a 204.
        lines, declared = headLines(headers, code == 204)
        out = []
        if body is not None and declared is not None and code not in (204, 304):
            total = sum(map(len, body))
            if total != declared and request.method != 'HEAD':
                raise ResponseError(
                    f"Content-Length {declared} but the body has {total} bytes")
        if code in (204, 304) or request.method == 'HEAD':
            if (body is not None and declared is None and code not in (204, 304)):
                out += ('Content-Length: ', str(sum(map(len, body))), '\r\n')
        elif declared is not None:
            self._mode, self._left = 'length', declared
        elif body is not None:
            self._mode, self._left = 'length', sum(map(len, body))
            out += ('Content-Length: ', str(self._left), '\r\n')
        elif request.version == '1.1':
            self._mode = 'chunked'
            out.append('Transfer-Encoding: chunked\r\n')
        else:
            self._mode = 'close'
            self.mustClose = True
        if self._mustClose():
            self.mustClose = True
            out.append('Connection: close\r\n')
        out.append('\r\n')
        return b'HTTP/1.1 %s\r\n%s%s' % (status.encode('latin-1'), lines,
                                          ''.join(out).encode('latin-1'))

    def _mustClose(self):
        """True when the connection closes after this response."""
        conn = self.conn
        return self.mustClose or conn.worker.stopping or (
            self.request.hasBody and not conn.canKeepBody(self))

    def frameBody(self, data):
        mode = self._mode
        if mode == 'length':
            self._left -= len(data)
            if self._left < 0:
                raise ResponseError("the application sent more than its Content-Length")
            return data
        if mode == 'chunked':
            return b'%x\r\n%b\r\n' % (len(data), data)
        if mode is None:
            return b''
        return data

    def frameEnd(self):
        mode = self._mode
        if mode == 'chunked':
            return b'0\r\n\r\n'
        if mode == 'length' and self._left:
            raise ResponseError(
                f"the application sent {self._left} bytes less than its Content-Length")
        return b''

    def transmit(self, data):
        sendAll(self.conn.sock, data, self.conn.worker.readTimeout)


@implementer(IConnection)
class HTTPConnection:
    """See IConnection.  ``HTTPConnection(sock, worker)`` serves ``worker.app`` over HTTP/1.1."""

    maxDrain = MAX_DRAIN
    drainTimeout = DRAIN_TIMEOUT

    def __init__(self, sock, worker):
        self.sock = sock
        self.worker = worker
        self.closed = False
        self.lastActive = time.monotonic()
        self.reader = RequestReader()
        self._server = None         # {SERVER_NAME, SERVER_PORT, REMOTE_ADDR, ...}: once

    # -- IConnection -----------------------------------------------------

    def dataReceived(self, data):
        """See IConnection."""
        self.reader.feed(data)
        try:
            self._process()
        except (GatewayError, OSError) as e:
            log.warning("HTTP connection closed: %s", e)
            self.close()

    def connectionLost(self):
        self.close()

    def isIdle(self):
        return True     # only ever asked between requests, from the loop

    @property
    def buffered(self):
        """See IConnection."""
        return int(self.reader.pending)     # the reader holds what it parsed, not raw bytes

    def close(self):
        """See IConnection."""
        if not self.closed:
            self.closed = True
            _discardInput(self.sock)
            try:
                self.sock.close()
            except OSError:
                log.debug("closing an HTTP connection failed", exc_info=True)

    # -- helpers for HTTPInput and HTTPResponse ----------------------------

    def sendInformational(self, data):
        sendAll(self.sock, data, self.worker.readTimeout)

    def receiveMore(self, timeout=None):
        """Read the next bytes of the request being served into the reader, boundedly."""
        wait = self.worker.readTimeout if timeout is None else min(timeout,
                                                                    self.worker.readTimeout)
        self.reader.feed(recvSome(self.sock, wait, what='reading an HTTP request body'))

    def canKeepBody(self, response):
        """False when the unread rest of the body is better dropped with the connection."""
        body = response.body
        if body.eof:
            return True
        if body._continue:
            return False    # the client waits for a 100 it will never get
        length = response.request.contentLength
        return length is None or length - body.received <= self.maxDrain

    # -- internals ---------------------------------------------------------

    def _process(self):
        queue = self.reader.queue
        while queue and not self.closed:
            item = queue.popleft()
            if type(item) is Request:
                self._serve(item)
            elif isinstance(item, Refusal):
                self._refuse(item)
        if self.reader.finished and not queue:
            self.close()

    def _serve(self, request):
        environ = request.environ()
        self._address(environ)
        body = HTTPInput(self, request)
        baseEnviron(environ, body, sys.stderr)
        response = HTTPResponse(self.worker.app, environ, self, request, body)
        accessLog = self.worker.accessLog
        if accessLog is not None:
            started = accessLog.begin(response)
        with self.worker.requestStarted(response):
            try:
                response.serve()
            except ProtocolError as e:
                refusal = e if isinstance(e, Refusal) else Refusal(400, str(e))
                if accessLog is not None:
                    if not response.headersSent:
                        response.status = f'{refusal.status} -'
                    accessLog.record(environ, response, started)
                self._refuse(refusal, response.headersSent)
                return
            except BaseException:
                if accessLog is not None:
                    accessLog.record(environ, response, started)
                raise
            if accessLog is not None:
                accessLog.record(environ, response, started)
            # Reading what the application left unread is part of the request:
            # the worker stays busy, so RequestTimeout and scale-up see it.
            keep = not (response.broken or response.mustClose or body.error)
            if keep and not body.eof:
                queue = self.reader.queue
                if queue and queue[0] is END:
                    queue.popleft()     # no body, or all of it read: the common case
                else:
                    keep = body.drain(self.maxDrain,
                                      min(self.drainTimeout, self.worker.readTimeout))
        if not keep:
            self.close()
            return
        # The idle sweep gives the next head this long from now, however
        # slowly it trickles in.
        self.lastActive = time.monotonic()

    def _address(self, environ):
        server = self._server
        if server is None:
            local, peer = self.sock.getsockname(), self.sock.getpeername()
            if isinstance(local, tuple):
                address = local[0], str(local[1]), peer[0], str(peer[1])
            else:
                # A unix socket has no peer address: CGI's REMOTE_ADDR stays empty.
                address = 'localhost', '0', '', ''
            server = self._server = dict(
                zip(('SERVER_NAME', 'SERVER_PORT', 'REMOTE_ADDR', 'REMOTE_PORT'), address),
                SERVER_SOFTWARE='peak_lite')
        environ.update(server)

    def _refuse(self, refusal, headersSent=False):
        status = getattr(refusal, 'status', 400)
        log.info("bad HTTP request: %s", refusal)
        if not headersSent:
            body = f"{status} {_REASONS.get(status, 'Bad Request')}: {refusal}\n".encode(
                'latin-1', 'replace')
            head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Bad Request')}\r\n"
                    "Content-Type: text/plain\r\nConnection: close\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode('latin-1')
            try:
                sendAll(self.sock, head + body, self.worker.readTimeout)
            except OSError as e:
                log.debug("could not send the %d response: %s", status, e)
        self.close()


def _discardInput(sock, limit=16):
    """Send our FIN, then read and drop what the client already sent.

    Closing a socket with unread input makes the kernel send a reset, which
    can destroy the response the client has not read yet.  Reads only what
    is already there (the socket is non-blocking), at most ``limit`` × 64 KiB.
    """
    try:
        sock.shutdown(socket.SHUT_WR)
        for _ in range(limit):
            if not sock.recv(65536):
                return
    except OSError:
        return      # nothing (more) to read now, or the peer is already gone
