"""A small HTTP/1.1 responder on the manager's own loop: non-blocking, bounded, no threads.

Each client is a reader of the manager's selector.  A request head is read
up to MAX_HEAD bytes; the answer is computed at once by ``respond`` (the
manager's data is all in memory) and written without blocking: what the
socket does not take now is sent when it becomes writable.  Keep-alive and
pipelining work; a client gets CLIENT_TIMEOUT seconds for each request and
at most MAX_CLIENTS are served at once (the one idle the longest goes
first).  Nothing here ever blocks the loop, so the status keeps answering
while every worker is busy, during reloads and during drains.

Across a restart's exec the server moves: ``detach()`` leaves the manager's
loop closing nothing, the status keeper (keeper.py) ``attach()``es it to a
loop of its own, clients and half-read requests included, and ``drain()``s
it once the new image serves.
"""

import errno
import logging
import selectors
import socket
import time

log = logging.getLogger('peak_lite.procman')

__all__ = ['StatusServer', 'MAX_HEAD', 'MAX_CLIENTS', 'CLIENT_TIMEOUT']

MAX_HEAD = 8192          # bytes of request line and headers
MAX_CLIENTS = 32
MAX_UNSENT = 1 << 20     # bytes of answers queued for one client
CLIENT_TIMEOUT = 10.0    # seconds a client may take to send a request (or stay idle)
ACCEPT_BATCH = 16
REASONS = {200: 'OK', 400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed',
           408: 'Request Timeout', 431: 'Request Header Fields Too Large',
           503: 'Service Unavailable', 505: 'HTTP Version Not Supported'}


class StatusServer:
    """Serve ``respond(method, path, headers) -> (code, contentType, body)`` on ``sock``.

    ``headers`` is a dict of lower-cased names; ``body`` is bytes.
    """

    def __init__(self, sock, loop, respond, timeout=CLIENT_TIMEOUT):
        self.sock = sock
        self.loop = None             # None while detached
        self.respond = respond
        self.timeout = timeout
        self.clients = {}
        self.accepting = True
        self.draining = False
        sock.setblocking(False)
        self.attach(loop)

    def attach(self, loop):
        """Serve on ``loop``: the listener, and the clients we hold (see ``detach``)."""
        self.loop = loop
        if self.accepting:
            loop.addReader(self.sock.fileno(), self._accept)
        for client in self.clients.values():
            client.attach()

    def detach(self):
        """Leave our loop, closing nothing: the loop is closing, and a restart's exec
        may hand the listener and the clients to the status keeper."""
        if self.loop is None:
            return
        if self.accepting:
            self.loop.removeReader(self.sock.fileno())
        for client in self.clients.values():
            client.detach()
        self.loop = None

    def pause(self):
        """Accept nothing for now: connections wait in the socket's backlog."""
        if self.accepting and self.loop is not None:
            self.loop.removeReader(self.sock.fileno())
        self.accepting = False

    def resume(self):
        if not self.accepting and not self.draining and self.loop is not None:
            self.loop.addReader(self.sock.fileno(), self._accept)
            self.accepting = True

    def drain(self):
        """Stop accepting for good (another process accepts on the socket now); close the
        idle clients, and the others once answered, with ``Connection: close``."""
        self.pause()
        self.draining = True
        for client in list(self.clients.values()):
            if client.idle():
                client.close()

    def fds(self):
        return [self.sock.fileno()] + list(self.clients)

    def _accept(self):
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("status listener: cannot accept: %s", e.strerror)
                    return
                continue        # that one connection went away first
            if len(self.clients) >= MAX_CLIENTS:
                oldest = min(self.clients.values(), key=lambda c: c.since)
                oldest.close()
            _Client(self, conn)

    def close(self):
        for client in list(self.clients.values()):
            client.close()
        self.pause()                 # the socket's owner closes it
        self.loop = None

    def closeInChild(self):
        """In a forked child: drop our copies of the sockets, touching nothing shared."""
        for client in self.clients.values():
            client.sock.close()
        self.clients = {}
        self.sock.close()


class _Client:
    """One connection: read heads, answer them in order, close on error or timeout."""

    def __init__(self, server, sock):
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.inbox = b''
        self.outbox = b''
        self.closing = False
        self.writing = False
        self.since = time.monotonic()
        self.timer = None
        self.answered = 0
        sock.setblocking(False)
        server.clients[self.fd] = self
        self.attach()

    def attach(self):
        """Be served by our server's loop, with a fresh timeout."""
        self.server.loop.selector.register(
            self.fd, selectors.EVENT_WRITE if self.writing else selectors.EVENT_READ,
            self._readable)
        self._restartTimer()

    def detach(self):
        self.timer.cancel()
        self.server.loop.removeReader(self.fd)

    def idle(self):
        """True between requests of a kept-alive connection: nothing read of the next
        one, nothing left to send.  A new connection waits for its first request."""
        return self.answered and not self.inbox and not self.outbox

    def _expire(self):
        if not self.inbox and not self.outbox:
            self.close()        # idle keep-alive: just go
            return
        if not self.writing:
            self._answer(408, 'text/plain', b'request timeout\n', keep=False)
            self._flush()
        else:
            self.close()        # the peer is not reading its answer

    def _readable(self):
        if self.writing:
            self._flush()
            return
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b''
        if not data:
            self.close()
            return
        self.inbox += data
        self._process()

    def _process(self):
        # Pipelined requests wait while much is unsent: a client that never reads
        # cannot make us build answers without end.
        while (not self.closing and len(self.outbox) < MAX_UNSENT
               and b'\r\n\r\n' in self.inbox):
            head, _, self.inbox = self.inbox.partition(b'\r\n\r\n')
            self._request(head)
        if (len(self.inbox) > MAX_HEAD and not self.closing
                and b'\r\n\r\n' not in self.inbox[:MAX_HEAD + 4]):
            self._answer(431, 'text/plain', b'request head too large\n', keep=False)
        if not self.closing:
            self._restartTimer()
        self._flush()

    def _request(self, head):
        lines = head.decode('latin-1').split('\r\n')
        parts = lines[0].split(' ')
        if len(parts) != 3 or not parts[2].startswith('HTTP/1.'):
            self._answer(400, 'text/plain', b'malformed request line\n', keep=False)
            return
        method, target, version = parts
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.partition(':')
            if not colon:
                self._answer(400, 'text/plain', b'malformed header\n', keep=False)
                return
            headers[name.strip().lower()] = value.strip()
        connection = headers.get('connection', '').lower()
        keep = 'close' not in connection and (version == 'HTTP/1.1' or 'keep-alive' in connection)
        keep = keep and not self.server.draining
        if method not in ('GET', 'HEAD'):
            self._answer(405, 'text/plain', b'only GET and HEAD\n', keep=False,
                         extra='Allow: GET, HEAD\r\n')
            return
        if 'content-length' in headers or 'transfer-encoding' in headers:
            self._answer(400, 'text/plain', b'a GET has no body here\n', keep=False)
            return
        try:
            code, contentType, body = self.server.respond(method, target.split('?')[0],
                                                          headers)
        except Exception:
            log.error("status listener: answering %s failed", target, exc_info=True)
            code, contentType, body = 500, 'text/plain', b'internal error\n'
        self._answer(code, contentType, b'' if method == 'HEAD' else body, keep,
                     length=len(body))

    def _answer(self, code, contentType, body, keep, extra='', length=None):
        length = len(body) if length is None else length
        head = (f"HTTP/1.1 {code} {REASONS.get(code, 'Error')}\r\n"
                f"Content-Type: {contentType}\r\nContent-Length: {length}\r\n"
                f"Cache-Control: no-store\r\n{extra}")
        if not keep:
            head += 'Connection: close\r\n'
            self.closing = True
            self.inbox = b''
        self.outbox += head.encode('latin-1') + b'\r\n' + body
        self.answered += 1

    def _flush(self):
        while self.outbox:
            try:
                sent = self.sock.send(self.outbox)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.close()
                return
            self.outbox = self.outbox[sent:]
        if self.outbox:
            if not self.writing:
                self.writing = True
                # The loop calls whatever callback a ready key carries: wait for room.
                self.server.loop.selector.modify(self.fd, selectors.EVENT_WRITE,
                                                 self._readable)
            return
        if self.closing or (self.server.draining and self.idle()):
            self.close()
            return
        if self.writing:
            self.writing = False
            self.server.loop.selector.modify(self.fd, selectors.EVENT_READ, self._readable)
        if b'\r\n\r\n' in self.inbox:
            self._process()         # requests held back while answers were queued

    def _restartTimer(self):
        if self.timer is not None:
            self.timer.cancel()
        self.since = time.monotonic()
        self.timer = self.server.loop.callLater(self.server.timeout, self._expire)

    def close(self):
        if self.server.clients.pop(self.fd, None) is None:
            return
        if self.server.loop is not None:
            self.detach()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
