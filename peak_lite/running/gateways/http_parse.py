"""Reading HTTP/1.1 requests off the wire with llhttp (through httptools), RFC 9112.

``RequestReader`` turns the bytes it is fed into a queue of items: a
``Request`` once its head is whole, then its body as bytes, then ``END``;
or a ``Refusal`` where the stream stops making sense.  llhttp checks the
framing (methods, versions, chunked syntax, CTL characters in field values,
Content-Length together with Transfer-Encoding, duplicate or invalid
Content-Length); this module adds what llhttp leaves to the server: the
limits, the request-target forms, Host, Transfer-Encoding in HTTP/1.0, and
turning the head into a CGI-style environ.
"""

from collections import deque
from urllib.parse import unquote

import httptools

from peak_lite.running.gateways import speedups
from peak_lite.running.gateways.interfaces import ProtocolError

__all__ = ['RequestReader', 'Request', 'Refusal', 'END',
           'MAX_TARGET', 'MAX_FIELDS', 'MAX_FIELD', 'MAX_HEAD']

MAX_TARGET = 8192       # bytes in the request-target: 414 past it
MAX_FIELDS = 100        # header fields: 431 past it
MAX_FIELD = 8192        # bytes in one field line (name and value): 431 past it
MAX_HEAD = 65536        # bytes in the whole head: 431 past it

END = object()          # the queue item that ends a request's body

# Field names as environ keys, computed once per distinct name.  A name with
# an underscore maps to None: it is dropped (see fieldsOf).
_SPECIAL = {b'content-type': 'CONTENT_TYPE', b'content-length': 'CONTENT_LENGTH'}
_WATCHED = frozenset(('HTTP_HOST', 'HTTP_TRANSFER_ENCODING', 'CONTENT_LENGTH', 'HTTP_EXPECT'))
_keys = {}


def _environKey(name):
    if b'_' in name:
        key = None
    else:
        lower = name.lower()
        key = _SPECIAL.get(lower)
        if key is None:
            key = 'HTTP_' + lower.decode('latin-1').upper().replace('-', '_')
    if len(_keys) < 4096:
        _keys[name] = key
    return key


def fieldsOf(raw, keys, environKey, watched):
    """``(fields, watchedFields)`` of a head's raw ``[name, value, ...]``.

    ``fields``: ``{environ key: value str}``, trailing blanks stripped, the
    values of a key given twice joined with ","; ``watchedFields``:
    ``[(key, raw value)]`` for the keys in ``watched``.  ``keys`` caches each
    name's key, None for a name that is dropped; ``environKey(name)`` computes
    one it lacks.  speedups.py has its twin.
    """
    fields = {}
    seen = []
    raw = iter(raw)
    for name, value in zip(raw, raw):
        key = keys[name] if name in keys else environKey(name)
        if key is None:
            # X_Forwarded_For would land on HTTP_X_FORWARDED_FOR and spoof the
            # dashed header a proxy vouches for: drop it, as gunicorn does.
            continue
        if key in watched:
            seen.append((key, value))
        value = value.rstrip(b' \t').decode('latin-1')
        fields[key] = fields[key] + ',' + value if key in fields else value
    return fields, seen


class Refusal(ProtocolError):
    """The request cannot be served: answer ``status`` and close the connection."""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status


class FieldLines:
    """The head's fields, raw, bounded as they come; ``add`` is httptools' ``on_header``.

    ``add(name, value)`` keeps the field in a flat list and adds it to
    ``size``, the head's bytes so far (its request-target included).  A field
    past ``maxField`` bytes, a field past ``maxFields`` or a head past
    ``maxHead`` bytes calls ``tooBig(name, fieldSize, fields, headSize)``, which
    raises.  ``take()`` returns ``[name, value, ...]`` and starts afresh.  Its
    compiled twin (speedups.py) does the same with no Python frame per field.
    """

    def __init__(self, maxField, maxFields, maxHead, tooBig):
        self.maxField, self.maxFields, self.maxHead = maxField, maxFields, maxHead
        self.tooBig = tooBig
        self.raw = []
        self.size = 0

    def add(self, name, value):
        field = len(name) + len(value) + 4
        count = len(self.raw) // 2
        self.size += field
        if field > self.maxField or count >= self.maxFields or self.size > self.maxHead:
            return self.tooBig(name, field, count, self.size)
        self.raw += (name, value)

    def take(self):
        raw = self.raw
        self.raw = []
        self.size = 0
        return raw


class Request:
    """One request head, as parsed."""

    __slots__ = ('method', 'target', 'version', 'fields', 'keepAlive', 'chunked',
                 'contentLength', 'expectContinue', 'hostCount')

    def __init__(self):
        self.target = b''
        self.fields = None          # {environ key: value str}, underscored names dropped
        self.chunked = False
        self.contentLength = None
        self.expectContinue = False
        self.hostCount = 0

    @property
    def hasBody(self):
        return self.chunked or bool(self.contentLength)

    def environ(self):
        """The CGI-style part of the environ (all str), the server's part left out."""
        target = self.target.decode('latin-1')
        host = None
        if target[0] != '/' and target != '*':
            # absolute-form (RFC 9112 3.2.2): the authority replaces Host.
            rest = target.partition('://')[2]
            cut = min((i for i in (rest.find('/'), rest.find('?')) if i >= 0),
                      default=len(rest))
            host, target = rest[:cut], rest[cut:]
            if not target.startswith('/'):
                target = '/' + target
        path, _, query = target.partition('?')
        # The fields' keys are HTTP_*, CONTENT_TYPE and CONTENT_LENGTH: none of these.
        environ = self.fields
        environ['REQUEST_METHOD'] = self.method
        environ['SCRIPT_NAME'] = ''
        environ['PATH_INFO'] = unquote(path, 'latin-1') if '%' in path else path
        environ['QUERY_STRING'] = query
        environ['REQUEST_URI'] = target
        environ['SERVER_PROTOCOL'] = 'HTTP/' + self.version
        if host is not None:
            environ['HTTP_HOST'] = host
        return environ


class RequestReader:
    """Feed it bytes; take ``Request``, bytes, ``END`` and ``Refusal`` items off ``queue``.

    After a Refusal, or once the peer asked to switch protocols, ``finished``
    is True and further bytes are ignored.
    """

    maxTarget = MAX_TARGET
    maxFields = MAX_FIELDS
    maxField = MAX_FIELD
    maxHead = MAX_HEAD

    def __init__(self):
        self.queue = deque()
        self.finished = False
        # httptools looks its callbacks up once, here: on_header is an attribute.
        compiled = speedups.compiled
        self._lines = (FieldLines if compiled is None else compiled.FieldLines)(
            self.maxField, self.maxFields, self.maxHead, self._tooBig)
        self.on_header = self._lines.add
        self._parser = httptools.HttpRequestParser(self)
        self._request = None        # the request whose head is being read
        self._trickled = 0          # head bytes fed after the feed its head began in
        self._inMessage = False     # from a request's first byte to its body's end

    @property
    def pending(self):
        """True while bytes were read for a request not yet served: one under way, or queued."""
        return self._inMessage or bool(self.queue)

    def feed(self, data):
        if self.finished:
            return
        inHead = self._request
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # CONNECT was refused in its head; any other Upgrade is ignored,
            # and the connection closes once that request is served.
            self.finished = True
            return
        except httptools.HttpParserCallbackError as e:
            refusal = e.__context__
            if not isinstance(refusal, Refusal):
                raise
            self._refuse(refusal)
            return
        except httptools.HttpParserError as e:
            reason = str(e) or type(e).__name__
            status = 505 if 'HTTP version' in reason else 400
            self._refuse(Refusal(status, f"malformed HTTP request: {reason}"))
            return
        if inHead is not None and inHead is self._request:
            # All of this feed belongs to a head that is still not whole:
            # bound what llhttp and httptools buffer for it.
            self._trickled += len(data)
            if self._lines.size + self._trickled > self.maxHead:
                self._refuse(Refusal(431, f"request head exceeds {self.maxHead} bytes"))

    def _refuse(self, refusal):
        self.finished = True
        self._request = None
        self.queue.append(refusal)

    # -- httptools callbacks -------------------------------------------------

    def on_message_begin(self):
        self._inMessage = True
        self._request = Request()
        self._trickled = 0
        # self._lines is empty here: on_headers_complete took the last head's
        # fields, and a head refused part way ends the connection's reading.

    def on_url(self, url):
        request = self._request
        request.target += url
        self._lines.size += len(url)
        if len(request.target) > self.maxTarget:
            raise Refusal(414, f"request target exceeds {self.maxTarget} bytes")

    def _tooBig(self, name, size, count, headSize):
        if size > self.maxField:
            raise Refusal(431, f"header field {name[:40]!r} exceeds {self.maxField} bytes")
        if count >= self.maxFields:
            raise Refusal(431, f"more than {self.maxFields} header fields")
        raise Refusal(431, f"request head exceeds {self.maxHead} bytes")

    @staticmethod
    def _watch(request, key, value):
        if key == 'HTTP_HOST':
            request.hostCount += 1
        elif key == 'HTTP_TRANSFER_ENCODING':
            request.chunked = True  # llhttp refuses a coding list not ending in chunked
        elif key == 'CONTENT_LENGTH':
            request.contentLength = int(value)      # llhttp checked it is digits
        elif value.strip().lower() == b'100-continue':
            request.expectContinue = True

    def on_headers_complete(self):
        request = self._request
        compiled = speedups.compiled
        request.fields, watched = (fieldsOf if compiled is None else compiled.fieldsOf)(
            self._lines.take(), _keys, _environKey, _WATCHED)
        for key, value in watched:
            self._watch(request, key, value)
        parser = self._parser
        request.version = version = parser.get_http_version()
        request.method = method = parser.get_method().decode('latin-1')
        # HTTP/1.0 connections close after the response, and so does one that
        # asked to switch protocols (llhttp stops reading there).
        request.keepAlive = (version == '1.1' and parser.should_keep_alive()
                             and not parser.should_upgrade())
        self._request = None
        if version not in ('1.1', '1.0'):
            raise Refusal(505, f"HTTP/{version} is not supported; use HTTP/1.1")
        target = request.target
        if method == 'CONNECT':
            raise Refusal(405, "CONNECT is not supported: this server is no proxy")
        if target == b'*':
            if method != 'OPTIONS':
                raise Refusal(400, f"the asterisk target is only for OPTIONS, not {method}")
        elif target[:1] != b'/' and b'://' not in target:
            raise Refusal(400, f"request target {target[:60]!r} is not a path or absolute URL")
        if version == '1.0' and request.chunked:
            raise Refusal(400, "Transfer-Encoding in an HTTP/1.0 request")
        if request.hostCount > 1 or (version == '1.1' and request.hostCount == 0):
            raise Refusal(400, "an HTTP/1.1 request needs exactly one Host header field")
        self.queue.append(request)

    def on_body(self, body):
        self.queue.append(body)

    def on_message_complete(self):
        self._inMessage = False
        self.queue.append(END)
