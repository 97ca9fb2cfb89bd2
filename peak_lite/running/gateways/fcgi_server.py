"""The FastCGI responder: one connection's state machine (see the FastCGI spec, §5-§6).

One request at a time per connection.  Once FCGI_BEGIN_REQUEST arrives the
connection reads the rest of that request (PARAMS, then STDIN into a
spooled file) with a bounded timeout, runs the application and sends the
whole response, then returns to the worker's loop.  With FCGI_KEEP_CONN the
connection then waits, idle, for the next request; without it, it closes.
"""

import io
import logging
import tempfile
import time
from urllib.parse import unquote

from zope.interface import implementer

from peak_lite.running.gateways import fcgi_protocol as fp
from peak_lite.running.gateways.interfaces import GatewayError, IConnection, ProtocolError
from peak_lite.running.gateways.sockio import sendAll
from peak_lite.running.gateways.wsgi import WSGIRequest, baseEnviron, headLines

log = logging.getLogger('peak_lite.running.gateways')

__all__ = ['FastCGIConnection', 'FastCGIResponse', 'FastCGIErrors']

MAX_PARAMS_SIZE = 256 * 1024     # all PARAMS bytes of one request
MAX_PARAMS_COUNT = 1000
SPOOL_LIMIT = 1024 * 1024        # request bodies past this go to a temporary file

_MANAGEMENT_VALUES = (b'FCGI_MAX_CONNS', b'FCGI_MAX_REQS', b'FCGI_MPXS_CONNS')


class _Request:
    __slots__ = ('id', 'keepConn', 'params', 'environ', 'stdin', 'stdinSize', 'stdinLimit')

    def __init__(self, requestId, keepConn):
        self.id = requestId
        self.keepConn = keepConn
        self.params = bytearray()
        self.environ = None         # decoded once the PARAMS stream ends
        self.stdin = None
        self.stdinSize = 0
        self.stdinLimit = None      # CONTENT_LENGTH, if given: STDIN may not go past it


class FastCGIErrors:
    """``wsgi.errors`` for one request: text sent as FCGI_STDERR records.

    Writes are held and go out with the response's next write, coalesced;
    ``flush()`` sends them at once.
    """

    def __init__(self, conn, requestId):
        self._conn = conn
        self._id = requestId
        self._buf = []
        self.used = False

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"wsgi.errors.write() needs str, got {type(text).__name__}")
        self._buf.append(text)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        data = self.take()
        if data:
            self._conn.transmit(data)

    @property
    def pending(self):
        """True while text is held, not yet sent."""
        return bool(self._buf)

    def take(self):
        """Return the held text as framed STDERR records, and forget it."""
        if not self._buf:
            return b''
        text = ''.join(self._buf)
        self._buf.clear()
        self.used = True
        return fp.encodeStream(fp.FCGI_STDERR, self._id, text.encode('utf-8', 'replace'))


class FastCGIResponse(WSGIRequest):
    """WSGIRequest framed as CGI output inside FCGI_STDOUT records."""

    def __init__(self, app, environ, conn, requestId, errors):
        super().__init__(app, environ)
        self.conn = conn
        self.requestId = requestId
        self.errors = errors    # the app may wrap environ's copy (wsgiref.validate does)

    def frameHead(self, status, headers, body):
        return b'Status: %s\r\n%s\r\n' % (status.encode('latin-1'), headLines(headers)[0])

    def frameBody(self, data):
        return data

    def frameEnd(self):
        return b''

    def wrap(self, data, final):
        errors = self.errors
        if final and not errors.used and not errors.pending and len(data) <= fp.STREAM_CHUNK:
            # The usual end of a response: one write, no STDERR.
            return fp.encodeLastOutput(self.requestId, data, 1 if self.failed else 0)
        out = [errors.take()]
        if data:
            out.append(fp.encodeStream(fp.FCGI_STDOUT, self.requestId, data))
        if final:
            out.append(fp.encodeRecord(fp.FCGI_STDOUT, self.requestId))
            if errors.used:
                out.append(fp.encodeRecord(fp.FCGI_STDERR, self.requestId))
            out.append(fp.encodeEndRequest(self.requestId, 1 if self.failed else 0))
        return b''.join(out)

    def transmit(self, data):
        self.conn.transmit(data)


@implementer(IConnection)
class FastCGIConnection:
    """See IConnection.  ``FastCGIConnection(sock, worker)`` serves ``worker.app``."""

    maxParamsSize = MAX_PARAMS_SIZE
    maxParamsCount = MAX_PARAMS_COUNT
    spoolLimit = SPOOL_LIMIT
    maxConns = 100

    def __init__(self, sock, worker):
        self.sock = sock
        self.worker = worker
        self.closed = False
        self.request = None
        self.lastActive = time.monotonic()
        self._parser = fp.RecordParser()
        self._stall = None          # the timer that drops a stalled request

    # -- IConnection -------------------------------------------------------

    def dataReceived(self, data):
        """See IConnection.

        Records are parsed as they arrive and a request is served, with the
        worker marked busy, once all of it is in.  A client that trickles its
        request never holds the worker: meanwhile the worker serves others.
        A request that stalls for ``readTimeout`` is dropped.
        """
        try:
            self._feed(data)
        except GatewayError as e:
            log.warning("FastCGI connection closed: %s", e)
            self.close()
        except OSError as e:
            log.warning("FastCGI connection failed: %s", e)
            self.close()
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        if self.request is not None and not self.closed:
            self._stall = self.worker.callLater(self.worker.readTimeout, self._stalled)

    def _stalled(self):
        self._stall = None
        if self.request is not None and not self.closed:
            log.warning("FastCGI connection closed: the peer sent nothing for %.1fs while "
                        "reading a FastCGI request", self.worker.readTimeout)
            fd = self.sock.fileno()
            self.close()
            self.worker.forget(fd)

    def connectionLost(self):
        if self.request is not None:
            log.warning("FastCGI peer closed the connection during request %d", self.request.id)
        self.close()

    def isIdle(self):
        return self.request is None

    @property
    def buffered(self):
        """See IConnection."""
        return self._parser.pending

    def close(self):
        """See IConnection."""
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        if not self.closed:
            self.closed = True
            self.request = None
            try:
                self.sock.close()
            except OSError:
                log.debug("closing a FastCGI connection failed", exc_info=True)

    def transmit(self, data):
        # The peer is a web server that buffers what we send: one that reads
        # so slowly that a single write takes longer than readTimeout in all
        # is dropped, not allowed to hold the worker.
        timeout = self.worker.readTimeout
        sendAll(self.sock, data, timeout, timeout)

    # -- records ---------------------------------------------------------

    def _feed(self, data):
        for rtype, reqId, content in self._parser.feed(data):
            if self.closed:
                return
            handler = _HANDLERS.get(rtype)
            if handler is None:
                self.transmit(fp.encodeUnknownType(rtype))
            else:
                handler(self, reqId, content)

    def _beginRequest(self, reqId, content):
        role, flags = fp.decodeBeginRequest(content)
        if reqId == fp.FCGI_NULL_REQUEST_ID:
            raise ProtocolError("FCGI_BEGIN_REQUEST with the null request id 0")
        if self.request is not None:
            # We never multiplex (FCGI_MPXS_CONNS=0).
            self.transmit(fp.encodeEndRequest(reqId, 0, fp.FCGI_CANT_MPX_CONN))
            return
        if role != fp.FCGI_RESPONDER:
            self.transmit(fp.encodeEndRequest(reqId, 0, fp.FCGI_UNKNOWN_ROLE))
            if not flags & fp.FCGI_KEEP_CONN:
                self.close()
            return
        self.request = _Request(reqId, bool(flags & fp.FCGI_KEEP_CONN))

    def _abortRequest(self, reqId, content):
        req = self.request
        if req is None or req.id != reqId:
            return          # already finished, or never ours: nothing to abort
        self.request = None
        if req.stdin is not None:
            req.stdin.close()
        self.transmit(fp.encodeEndRequest(reqId, 0, fp.FCGI_REQUEST_COMPLETE))
        if not req.keepConn:
            self.close()

    def _params(self, reqId, content):
        req = self.request
        if req is None or req.id != reqId:
            return
        if req.environ is not None:
            raise ProtocolError(f"FCGI_PARAMS for request {reqId} after its end")
        if not content:
            req.environ = environ = fp.decodeParams(req.params, self.maxParamsCount)
            req.params = None
            length = environ.get('CONTENT_LENGTH')
            if length:
                if not length.isdigit() or not length.isascii():
                    raise ProtocolError(
                        f"request {reqId} has CONTENT_LENGTH {length[:40]!r}, not a number")
                req.stdinLimit = int(length)
            self._maybeServe(req)
            return
        req.params += content
        if len(req.params) > self.maxParamsSize:
            raise ProtocolError(
                f"FastCGI parameters of request {reqId} exceed {self.maxParamsSize} bytes;"
                " raise FastCGIConnection.maxParamsSize if that is legitimate")

    def _stdin(self, reqId, content):
        req = self.request
        if req is None or req.id != reqId:
            return
        if req.stdinSize < 0:
            raise ProtocolError(f"FCGI_STDIN for request {reqId} after its end")
        if req.environ is None:
            raise ProtocolError(f"FCGI_STDIN for request {reqId} before its FCGI_PARAMS ended")
        if content:
            limit = req.stdinLimit
            if limit is not None and req.stdinSize + len(content) > limit:
                # CGI's body is CONTENT_LENGTH bytes: more is a broken or hostile
                # peer, and spooling it would only fill the disk.
                raise ProtocolError(
                    f"FCGI_STDIN for request {reqId} goes beyond its CONTENT_LENGTH"
                    f" of {limit}")
            if req.stdin is None:
                req.stdin = tempfile.SpooledTemporaryFile(max_size=self.spoolLimit)
            req.stdin.write(content)
            req.stdinSize += len(content)
        else:
            req.stdinSize = -1 - req.stdinSize   # negative: ended
            self._maybeServe(req)

    def _data(self, reqId, content):
        pass        # FCGI_DATA belongs to the Filter role, which we do not play

    def _getValues(self, reqId, content):
        if reqId != fp.FCGI_NULL_REQUEST_ID:
            raise ProtocolError(f"FCGI_GET_VALUES with request id {reqId}; it must be 0")
        known = {b'FCGI_MAX_CONNS': str(self.maxConns).encode(),
                 b'FCGI_MAX_REQS': b'1', b'FCGI_MPXS_CONNS': b'0'}
        pairs = [(name, known[name]) for name, _ in fp.decodeNameValues(content, 100)
                 if name in known]
        self.transmit(fp.encodeRecord(fp.FCGI_GET_VALUES_RESULT, 0, fp.encodeNameValues(pairs)))

    # -- serving -----------------------------------------------------------

    def _maybeServe(self, req):
        if req.environ is None or req.stdinSize >= 0:
            return
        environ = req.environ
        if 'PATH_INFO' not in environ:
            _pathFromScriptName(environ)
        stdin = req.stdin
        if stdin is None:
            stdin = io.BytesIO()
        else:
            stdin.seek(0)
        errors = FastCGIErrors(self, req.id)
        baseEnviron(environ, stdin, errors)
        response = FastCGIResponse(self.worker.app, environ, self, req.id, errors)
        accessLog = self.worker.accessLog
        if accessLog is not None:
            started = accessLog.begin(response)
        try:
            with self.worker.requestStarted(response):
                response.serve()
        finally:
            if accessLog is not None:
                accessLog.record(environ, response, started)
            self.request = None
            self.lastActive = time.monotonic()
            stdin.close()
            if response.broken or not req.keepConn or self.worker.stopping:
                self.close()


def _pathFromScriptName(environ):
    """A stock nginx sends the whole path as SCRIPT_NAME and no PATH_INFO: make it PATH_INFO.

    Debian's ``fastcgi_params`` sets ``SCRIPT_NAME $fastcgi_script_name`` and
    nothing for PATH_INFO, which would route every URL to the application's
    root.  When PATH_INFO is absent and SCRIPT_NAME is the request's whole
    path (DOCUMENT_URI, or REQUEST_URI's decoded path without it), the
    application is taken to be mounted at the root.
    """
    script = environ.get('SCRIPT_NAME')
    if not script:
        return
    path = environ.get('DOCUMENT_URI')
    if path is None:
        path = environ.get('REQUEST_URI', '').partition('?')[0]
        path = unquote(path, 'latin-1') if '%' in path else path
    if path == script:
        environ['PATH_INFO'] = script
        environ['SCRIPT_NAME'] = ''


_HANDLERS = {
    fp.FCGI_BEGIN_REQUEST: FastCGIConnection._beginRequest,
    fp.FCGI_ABORT_REQUEST: FastCGIConnection._abortRequest,
    fp.FCGI_PARAMS: FastCGIConnection._params,
    fp.FCGI_STDIN: FastCGIConnection._stdin,
    fp.FCGI_DATA: FastCGIConnection._data,
    fp.FCGI_GET_VALUES: FastCGIConnection._getValues,
}
