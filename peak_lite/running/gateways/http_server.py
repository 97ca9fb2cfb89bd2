"""HTTP/1.1 with h11: one connection's request cycle, keep-alive and pipelining included.

Partial request heads wait in the worker's loop (bounded by the worker's
idle sweep), so a slow client never holds the worker.  Once a whole head is
in, the request is served synchronously: the body streams into
``wsgi.input`` on demand, with the read timeout bounding each wait, and
``Expect: 100-continue`` is answered when the application first reads.
"""

import logging
import socket
import sys
import time
from urllib.parse import unquote

import h11
from zope.interface import implementer

from peak_lite.running.gateways.interfaces import GatewayError, IConnection
from peak_lite.running.gateways.sockio import recvSome, sendAll
from peak_lite.running.gateways.wsgi import WSGIRequest, baseEnviron

log = logging.getLogger('peak_lite.running.gateways')

__all__ = ['HTTPConnection', 'HTTPResponse', 'HTTPInput']

MAX_HEAD_SIZE = 64 * 1024
MAX_DRAIN = 1024 * 1024     # unread body we will still read to keep the connection


class HTTPInput:
    """``wsgi.input`` reading the request body from h11 as the application asks."""

    def __init__(self, conn, expectContinue):
        self._conn = conn
        self._buf = bytearray()
        self._eof = False
        self._continue = expectContinue

    def _more(self):
        if self._eof:
            return False
        if self._continue:
            self._continue = False
            self._conn.sendInformational(100)
        event = self._conn.nextBodyEvent()
        if type(event) is h11.Data:
            self._buf += event.data
        else:
            self._eof = True
        return True

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
        while True:
            end = self._buf.find(b'\n')
            if end >= 0 or (0 <= size <= len(self._buf)) or not self._more():
                break
        end = len(self._buf) if end < 0 else end + 1
        if size is not None and size >= 0:
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

    def drain(self, limit):
        """Read and drop the rest of the body; False if more than ``limit`` bytes remain."""
        self._continue = False     # the client was not told to send: h11 handles that
        seen = 0
        while self._more():
            seen += len(self._buf)
            self._buf.clear()
            if seen > limit:
                return False
        return True


class HTTPResponse(WSGIRequest):
    """WSGIRequest framed by h11."""

    def __init__(self, app, environ, conn, isHead):
        super().__init__(app, environ)
        self.conn = conn
        self.isHead = isHead

    def frameHead(self, status, headers, body):
        h = self.conn.h11
        hdrs = list(headers)
        if body is not None and not any(n.lower() == 'content-length' for n, _ in hdrs):
            hdrs.append(('Content-Length', str(sum(map(len, body)))))
        if self.conn.worker.stopping:
            hdrs.append(('Connection', 'close'))
        code, _, reason = status.partition(' ')
        return h.send(h11.Response(status_code=int(code), headers=hdrs,
                                   reason=reason.encode('latin-1')))

    def frameBody(self, data):
        if self.isHead:
            return b''
        return self.conn.h11.send(h11.Data(data=data))

    def frameEnd(self):
        return self.conn.h11.send(h11.EndOfMessage())

    def transmit(self, data):
        sendAll(self.conn.sock, data, self.conn.worker.readTimeout)


@implementer(IConnection)
class HTTPConnection:
    """See IConnection.  ``HTTPConnection(sock, worker)`` serves ``worker.app`` over HTTP/1.1."""

    maxHeadSize = MAX_HEAD_SIZE

    def __init__(self, sock, worker):
        self.sock = sock
        self.worker = worker
        self.closed = False
        self.lastActive = time.monotonic()
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=self.maxHeadSize)
        self._serverAddr = None
        self._peerAddr = None

    # -- IConnection -----------------------------------------------------

    def dataReceived(self, data):
        """See IConnection."""
        self.h11.receive_data(data)
        try:
            self._process()
        except h11.RemoteProtocolError as e:
            self._reject(e)
        except (GatewayError, OSError, h11.LocalProtocolError) as e:
            log.warning("HTTP connection closed: %s", e)
            self.close()

    def connectionLost(self):
        self.close()

    def isIdle(self):
        return True     # only ever asked between requests, from the loop

    @property
    def buffered(self):
        """See IConnection."""
        if self.h11.their_state is not h11.IDLE:
            return 1        # a request is under way
        return len(self.h11.trailing_data[0])

    def close(self):
        """See IConnection."""
        if not self.closed:
            self.closed = True
            _discardInput(self.sock)
            try:
                self.sock.close()
            except OSError:
                log.debug("closing an HTTP connection failed", exc_info=True)

    # -- helpers for HTTPInput ---------------------------------------------

    def sendInformational(self, code):
        if self.h11.our_state is h11.SEND_RESPONSE:
            sendAll(self.sock, self.h11.send(h11.InformationalResponse(status_code=code, headers=[])),
                    self.worker.readTimeout)

    def nextBodyEvent(self):
        """The next Data or EndOfMessage of the request being served, waiting boundedly."""
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(recvSome(self.sock, self.worker.readTimeout,
                                               what='reading an HTTP request body'))
                continue
            if type(event) in (h11.Data, h11.EndOfMessage):
                return event
            raise GatewayError(f"unexpected {type(event).__name__} inside a request body")

    # -- internals ---------------------------------------------------------

    def _process(self):
        while not self.closed:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                return          # wait in the loop for (the rest of) a head
            if event is h11.PAUSED:
                self._finishCycle()
                continue
            if type(event) is h11.Request:
                size = sum(len(n) + len(v) + 4 for n, v in event.headers) + len(event.target)
                if size > self.maxHeadSize:
                    # h11 bounds heads that arrive piecemeal; this bounds one
                    # that arrived whole.
                    self._reject(h11.RemoteProtocolError(
                        f"request head of {size} bytes exceeds {self.maxHeadSize}",
                        error_status_hint=431))
                    return
                self._serve(event)
            elif type(event) is h11.ConnectionClosed:
                self.close()
                return

    def _finishCycle(self):
        if (self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE):
            self.h11.start_next_cycle()
        else:
            self.close()

    def _serve(self, request):
        environ = self._environ(request)
        body = HTTPInput(self, self._expectsContinue(request))
        environ = baseEnviron(environ, body, sys.stderr)
        response = HTTPResponse(self.worker.app, environ, self, request.method == b'HEAD')
        with self.worker.requestStarted():
            response.serve()
        if response.broken or self.h11.our_state is not h11.DONE:
            self.close()
            return
        if self.h11.their_state is not h11.DONE and not body.drain(MAX_DRAIN):
            self.close()
            return
        if self.h11.our_state is h11.MUST_CLOSE or self.h11.their_state is h11.MUST_CLOSE:
            self.close()
            return
        self.h11.start_next_cycle()
        # The idle sweep gives the next head this long from now, however
        # slowly it trickles in.
        self.lastActive = time.monotonic()

    @staticmethod
    def _expectsContinue(request):
        return any(n == b'expect' and v.lower() == b'100-continue' for n, v in request.headers)

    def _environ(self, request):
        if self._serverAddr is None:
            self._serverAddr = _addr(self.sock.getsockname())
            self._peerAddr = _addr(self.sock.getpeername())
        target = request.target.decode('latin-1')
        path, _, query = target.partition('?')
        environ = {
            'REQUEST_METHOD': request.method.decode('latin-1'),
            'SCRIPT_NAME': '',
            'PATH_INFO': unquote(path, 'latin-1'),
            'QUERY_STRING': query,
            'REQUEST_URI': target,
            'SERVER_NAME': self._serverAddr[0],
            'SERVER_PORT': self._serverAddr[1],
            'REMOTE_ADDR': self._peerAddr[0],
            'REMOTE_PORT': self._peerAddr[1],
            'SERVER_PROTOCOL': 'HTTP/' + request.http_version.decode('latin-1'),
            'SERVER_SOFTWARE': 'peak_lite',
        }
        for name, value in request.headers:
            name = name.decode('latin-1')
            value = value.decode('latin-1')
            if name == 'content-type':
                environ['CONTENT_TYPE'] = value
            elif name == 'content-length':
                environ['CONTENT_LENGTH'] = value
            else:
                key = 'HTTP_' + name.upper().replace('-', '_')
                environ[key] = environ[key] + ',' + value if key in environ else value
        return environ

    def _reject(self, error):
        log.info("bad HTTP request: %s", error)
        status = getattr(error, 'error_status_hint', 400)
        if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            body = f"{status} bad request: {error}\n".encode('latin-1', 'replace')
            try:
                data = b''.join((
                    self.h11.send(h11.Response(status_code=status, headers=[
                        ('Content-Type', 'text/plain'), ('Content-Length', str(len(body))),
                        ('Connection', 'close')])),
                    self.h11.send(h11.Data(data=body)),
                    self.h11.send(h11.EndOfMessage())))
                sendAll(self.sock, data, self.worker.readTimeout)
            except (h11.LocalProtocolError, OSError) as e:
                log.debug("could not send the %d response: %s", status, e)
        self.close()


def _addr(address):
    if isinstance(address, tuple):
        return address[0], str(address[1])
    return 'localhost', '0'      # unix socket


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
