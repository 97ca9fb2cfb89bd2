"""Run a WSGI application for one request (PEP 3333), whatever the wire protocol.

A protocol subclasses ``WSGIRequest`` and supplies how a head, body bytes
and the end of the response are framed (``frameHead``, ``frameBody``,
``frameEnd``) and how framed bytes reach the peer (``transmit``).  This module
does the PEP 3333 parts: ``start_response`` and its checks, ``write()``,
iterating and closing the result, and the generic 500 when the application
fails before its headers went out.
"""

import logging
import re
import sys
import traceback

from peak_lite.running.gateways import speedups
from peak_lite.running.gateways.interfaces import ClientTimeout, ConnectionClosed, ProtocolError

log = logging.getLogger('peak_lite.running.gateways')

__all__ = ['WSGIRequest', 'checkStatus', 'checkHeaders', 'headLines', 'baseEnviron',
           'ERROR_BODY']

ERROR_BODY = (b'<html><head><title>500 Internal Server Error</title></head><body>'
              b'<h1>Internal Server Error</h1><p>The server could not complete the request.'
              b'</p></body></html>\n')
ERROR_HEADERS = [('Content-Type', 'text/html; charset=utf-8'),
                 ('Content-Length', str(len(ERROR_BODY)))]

_STATUS = re.compile(r'[1-9][0-9][0-9] [^\r\n\0]*\Z')
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# Field values may hold visible characters, spaces and tabs (RFC 9110 5.5), no other CTL.
_BAD_VALUE = re.compile(r'[\x00-\x08\x0a-\x1f\x7f]')
_DIGITS = re.compile(r'[0-9]+\Z')
# PEP 3333: applications must not send hop-by-hop headers.
HOP_BY_HOP = frozenset(('connection', 'keep-alive', 'proxy-authenticate',
                        'proxy-authorization', 'te', 'trailers', 'transfer-encoding',
                        'upgrade'))


# The peer stalled, left, or broke the request's framing while the app read its
# body: the protocol answers that, not the application's 500.
PeerError = (ClientTimeout, ConnectionClosed, ProtocolError)


class ResponseError(Exception):
    """The application broke PEP 3333 (raised into the application)."""


def checkStatus(status):
    """Raise ResponseError unless ``status`` is a str like ``'200 OK'``."""
    compiled = speedups.compiled
    if compiled is not None and compiled.statusValid(status):
        return
    if type(status) is not str:
        raise ResponseError(f"WSGI status must be a str, got {type(status).__name__}: {status!r}")
    if not _STATUS.match(status):
        raise ResponseError(f"WSGI status {status!r} is not '<3-digit code> <reason>'")


def checkHeaders(headers):
    """Raise ResponseError unless ``headers`` is a list of (str, str) with legal contents.

    The compiled twin (speedups.py) passes what is legal; what it does not
    pass is looked at again here, which says what is wrong.
    """
    compiled = speedups.compiled
    if compiled is not None and compiled.headersValid(headers):
        return
    if type(headers) is not list:
        raise ResponseError(
            f"WSGI response headers must be a list, got {type(headers).__name__}")
    for item in headers:
        if type(item) is not tuple or len(item) != 2:
            raise ResponseError(f"WSGI response header {item!r} is not a (name, value) tuple")
        name, value = item
        if type(name) is not str or type(value) is not str:
            raise ResponseError(f"WSGI response header {item!r} must be a pair of str")
        if not _TOKEN.match(name):
            raise ResponseError(f"WSGI response header name {name!r} is not a valid token")
        if _BAD_VALUE.search(value):
            raise ResponseError(
                f"WSGI response header {name!r} has a control character in its value {value!r}")
        if len(name) == 14 and name.lower() == 'content-length' and not _DIGITS.match(value):
            raise ResponseError(f"WSGI response header Content-Length {value!r} is not a number")
        if name.lower() in HOP_BY_HOP:
            raise ResponseError(
                f"WSGI response header {name!r} is hop-by-hop; the gateway manages it")
        try:
            value.encode('latin-1')
        except UnicodeEncodeError:
            raise ResponseError(
                f"WSGI response header {name!r} value {value!r} is not latin-1") from None


def headLines(headers, dropContentLength=False):
    """``(lines, declared)``: a "Name: value" CRLF line per header in latin-1 bytes
    (Content-Length's left out if ``dropContentLength``), and the Content-Length
    declared as an int, or None.

    ``headers`` passed checkHeaders.  Raises ResponseError when two
    Content-Length headers disagree.  speedups.py has the compiled twin.
    """
    compiled = speedups.compiled
    if compiled is not None:
        found = compiled.headLines(headers, dropContentLength)
        if found is not None:
            return found
    declared = None
    out = []
    for name, value in headers:
        if len(name) == 14 and name.lower() == 'content-length':
            if declared is not None and int(value) != declared:
                raise ResponseError(f"two different Content-Length headers: {value!r}")
            declared = int(value)
            if dropContentLength:
                continue
        out += (name, ': ', value, '\r\n')
    return ''.join(out).encode('latin-1'), declared


def baseEnviron(environ, wsgiInput, wsgiErrors):
    """Add the ``wsgi.*`` keys to a CGI-style ``environ`` (a dict of str) and return it."""
    https = environ.get('HTTPS', '').lower() in ('on', '1', 'yes')
    environ['wsgi.version'] = (1, 0)
    environ['wsgi.url_scheme'] = 'https' if https else environ.get('REQUEST_SCHEME', 'http')
    environ['wsgi.input'] = wsgiInput
    environ['wsgi.errors'] = wsgiErrors
    environ['wsgi.multithread'] = False
    environ['wsgi.multiprocess'] = True
    environ['wsgi.run_once'] = False
    environ.setdefault('SCRIPT_NAME', '')
    environ.setdefault('PATH_INFO', '')
    environ.setdefault('QUERY_STRING', '')
    environ.setdefault('SERVER_PROTOCOL', 'HTTP/1.0')
    return environ


class WSGIRequest:
    """One request's response cycle.  Subclasses frame and transmit; see module doc.

    After ``serve()``: ``status`` is the status line sent (or None),
    ``failed`` is True when the application raised or broke the protocol,
    and ``broken`` is True when the response could not be completed on the
    wire (the connection must then be closed).
    """

    def __init__(self, app, environ):
        self.app = app
        self.environ = environ
        self.status = None
        self.headers = None
        self.headersSent = False
        self.failed = False
        self.broken = False
        self._pending = []

    # -- to be supplied by a protocol ------------------------------------
    def frameHead(self, status, headers, body):
        """Bytes for the head; ``body`` is the whole body if known (a list), else None."""
        raise NotImplementedError

    def frameBody(self, data):
        raise NotImplementedError

    def frameEnd(self):
        raise NotImplementedError

    def wrap(self, data, final):
        """Wrap the joined output of one write (head, body, end) for the wire."""
        return data

    def transmit(self, data):
        """Send ``data`` (bytes) to the peer completely, or raise OSError."""
        raise NotImplementedError

    # -- PEP 3333 --------------------------------------------------------
    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.headersSent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise ResponseError("start_response() called a second time without exc_info")
        checkStatus(status)
        checkHeaders(headers)
        self.status = status
        self.headers = headers
        return self.write

    def write(self, data):
        """The legacy ``write()`` callable: transmitted before it returns."""
        if self.status is None:
            raise ResponseError("write() called before start_response()")
        if type(data) is not bytes:
            raise ResponseError(f"write() needs bytes, got {type(data).__name__}")
        self._emit([data])

    def _emit(self, chunks, final=False):
        out = self._pending
        if not self.headersSent:
            if self.status is None:
                raise ResponseError("the application returned a body before start_response()")
            out.append(self.frameHead(self.status, self.headers, chunks if final else None))
            self.headersSent = True
        frame = self.frameBody
        for chunk in chunks:
            if chunk:
                out.append(frame(chunk))
        if final:
            out.append(self.frameEnd())
        data = b''.join(out) if len(out) != 1 else out[0]
        out.clear()
        data = self.wrap(data, final)
        if data:
            self.transmit(data)

    def serve(self):
        """Run the application and send its whole response.  Never raises for app errors."""
        try:
            result = self.app(self.environ, self.start_response)
            try:
                if type(result) in (list, tuple):
                    for chunk in result:
                        if type(chunk) is not bytes:
                            raise ResponseError(
                                f"the application's body holds a {type(chunk).__name__},"
                                " not bytes")
                    self._emit(result, final=True)
                else:
                    for chunk in result:
                        if type(chunk) is not bytes:
                            raise ResponseError(
                                f"the application yielded a {type(chunk).__name__}, not bytes")
                        if chunk:
                            self._emit((chunk,))
                    self._emit((), final=True)
            finally:
                close = getattr(result, 'close', None)
                if close is not None:
                    close()
        except PeerError:
            raise       # the peer stalled, left or broke framing while the app read its body
        except OSError as e:
            if not self._fromApp(e):
                raise
            self._appFailed()
        except Exception:
            self._appFailed()

    def _fromApp(self, exc):
        # An OSError raised by our own transmit means the peer went away;
        # anything else came from the application.
        return not getattr(exc, '_peakTransmit', False)

    def _appFailed(self):
        self.failed = True
        exc = sys.exc_info()[1]
        errors = self.environ.get('wsgi.errors')
        text = ''.join(traceback.format_exception(exc))
        where = (f"{self.environ.get('REQUEST_METHOD', '?')} "
                 f"{self.environ.get('SCRIPT_NAME', '')}{self.environ.get('PATH_INFO', '')}")
        log.error("application error for %s: %s: %s", where, type(exc).__name__, exc)
        try:
            errors.write(f"Error in WSGI application for {where}:\n{text}")
            errors.flush()
        except Exception:
            log.error("could not write the traceback to wsgi.errors", exc_info=True)
        if self.headersSent:
            # Too late for a 500: the peer must see a cut-off response.
            self.broken = True
            return
        self._pending.clear()
        self.status, self.headers = '500 Internal Server Error', list(ERROR_HEADERS)
        try:
            self._emit([ERROR_BODY], final=True)
        except OSError:
            self.broken = True


def markTransmitError(exc):
    """Tag an OSError raised while sending, so it is not blamed on the application."""
    exc._peakTransmit = True
    return exc
