"""WebApp: a component that is a WSGI application, with routes, mounts and a transaction.

::

    class Greetings(WebApp):
        greeting = binding.Obtain(binding.PropertyName('greetings.text'))

        @route('/hello/{name}')
        def hello(self, request, name):
            return f"{self.greeting}, {name}!"

    peak CGI mymod:Greetings

- Every request runs in its own transaction (``storage.TransactionMiddleware``),
  committed before the response leaves; set ``transactional = False`` to
  manage transactions yourself.
- ``@route(PATTERN, methods=('GET',))`` marks a method as the handler of a
  path; ``{name}`` matches one path segment and is passed as a keyword.
  A path that matches with another method gets 405 and an ``Allow`` header;
  no match at all gets 404, unless a mount answers.
- ``mounts = {'/prefix': 'attrName'}`` hands every path under ``/prefix``
  (``''`` or ``'/'``: every path no route matched) to the WSGI application
  held by binding ``attrName``, for example a Pyramid or Flask app made with
  ``binding.Make(..., uponAssembly=True)``, so it is built before the fork.
  ``SCRIPT_NAME`` and ``PATH_INFO`` are shifted as PEP 3333 expects.
- ``environ['peak_lite.component']`` is the WebApp serving the request, so a
  mounted app can reach the component tree (its connections, its caches).
"""

import json
import re
from urllib.parse import parse_qs

from zope.interface import implementer

from peak_lite import binding
from peak_lite.running.interfaces import IWSGIApplication
from peak_lite.storage import TransactionMiddleware

__all__ = ['WebApp', 'Request', 'route', 'COMPONENT_KEY']

COMPONENT_KEY = 'peak_lite.component'
_STATUS = {200: '200 OK', 201: '201 Created', 204: '204 No Content', 400: '400 Bad Request',
           404: '404 Not Found', 405: '405 Method Not Allowed'}
_SEGMENT = re.compile(r'\{([A-Za-z_][A-Za-z0-9_]*)\}')


def route(pattern, methods=('GET',)):
    """Mark a WebApp method as the handler of ``pattern`` for ``methods``.

    The method is called as ``method(request, **segments)`` and returns a
    ``str`` (text/plain), ``bytes``, a ``dict`` or ``list`` (JSON), or a
    ``(status, headers, body)`` tuple, where status is an int or a status line.
    """
    if not pattern.startswith('/'):
        raise ValueError(f"route pattern must start with '/', got {pattern!r}")
    methods = tuple(m.upper() for m in ([methods] if isinstance(methods, str) else methods))
    regex = re.compile('^' + _SEGMENT.sub(r'(?P<\1>[^/]+)', re.escape(pattern)
                                          .replace(r'\{', '{').replace(r'\}', '}')) + '$')

    def mark(func):
        func.__dict__.setdefault('_webRoutes', []).append((regex, methods))
        return func
    return mark


class Request:
    """What a route handler gets: ``environ``, ``method``, ``path``, ``query``, ``body``."""

    def __init__(self, environ):
        self.environ = environ
        self.method = environ.get('REQUEST_METHOD', 'GET').upper()
        self.path = environ.get('PATH_INFO') or '/'
        self.query = {k: v[-1] for k, v in
                      parse_qs(environ.get('QUERY_STRING', ''), keep_blank_values=True).items()}

    @property
    def body(self):
        """The request body, read once."""
        if '_body' not in self.__dict__:
            try:
                length = int(self.environ.get('CONTENT_LENGTH') or 0)
            except ValueError:
                length = 0
            stream = self.environ.get('wsgi.input')
            self._body = stream.read(length) if stream is not None and length > 0 else b''
        return self._body


@implementer(IWSGIApplication)
class WebApp(binding.Component):
    """A component that is a WSGI application; see the module docstring."""

    transactional = True
    mounts = ()         # {'/prefix': 'attrName'}, or pairs; immutable by default

    def __call__(self, environ, start_response):
        return self.wsgiPipeline(environ, start_response)

    wsgiPipeline = binding.Make(
        lambda self: TransactionMiddleware(self.dispatch) if self.transactional
        else self.dispatch, suggestParent=False)

    @classmethod
    def routes(cls):
        """``[(regex, methods, function)]`` of the class and its bases, subclasses first."""
        cached = cls.__dict__.get('_routeTable')
        if cached is not None:
            return cached
        found, seen = [], set()
        for klass in cls.__mro__:
            for name, func in vars(klass).items():
                if name in seen:
                    continue
                seen.add(name)
                for regex, methods in getattr(func, '_webRoutes', ()):
                    found.append((regex, methods, func))
        cls._routeTable = tuple(found)
        return cls._routeTable

    def dispatch(self, environ, start_response):
        """Serve one request: a route, else a mount, else 404/405."""
        environ[COMPONENT_KEY] = self
        request = Request(environ)
        method = 'GET' if request.method == 'HEAD' else request.method
        allowed = []
        for regex, methods, func in type(self).routes():
            match = regex.match(request.path)
            if match is None:
                continue
            if method not in methods:
                allowed.extend(methods)
                continue
            result = func(self, request, **match.groupdict())
            status, headers, body = _response(result)
            start_response(status, headers)
            return [] if request.method == 'HEAD' else [body]
        mounted = self._mountFor(environ, request.path)
        if mounted is not None and not allowed:
            return mounted(environ, start_response)
        if allowed:
            allow = ', '.join(sorted(set(allowed) | ({'HEAD'} if 'GET' in allowed else set())))
            return _plain(start_response, 405, f"{request.method} is not allowed here",
                          [('Allow', allow)])
        return _plain(start_response, 404, f"nothing at {request.path}")

    def _mountFor(self, environ, path):
        best = None
        for prefix, attr in dict(self.mounts).items():
            prefix = prefix.rstrip('/')
            if path == prefix or path.startswith(prefix + '/') or not prefix:
                if best is None or len(prefix) > len(best[0]):
                    best = (prefix, attr)
        if best is None:
            return None
        prefix, attr = best
        if prefix:
            environ['SCRIPT_NAME'] = environ.get('SCRIPT_NAME', '') + prefix
            environ['PATH_INFO'] = path[len(prefix):]
        return getattr(self, attr)


def _response(result):
    if isinstance(result, tuple):
        status, headers, body = result
        status = _STATUS.get(status, f"{status} Status") if isinstance(status, int) else status
        body = body.encode('utf-8') if isinstance(body, str) else body
        return status, list(headers), body
    if isinstance(result, str):
        return '200 OK', [('Content-Type', 'text/plain; charset=utf-8')], result.encode('utf-8')
    if isinstance(result, bytes):
        return '200 OK', [('Content-Type', 'application/octet-stream')], result
    if isinstance(result, (dict, list)):
        return '200 OK', [('Content-Type', 'application/json')], json.dumps(result).encode()
    raise TypeError(f"a route handler returned {result!r}: return str, bytes, a dict or"
                    f" list (JSON), or (status, headers, body)")


def _plain(start_response, code, text, headers=()):
    body = (text + "\n").encode('utf-8')
    start_response(_STATUS[code], [('Content-Type', 'text/plain; charset=utf-8'),
                                   ('Content-Length', str(len(body))), *headers])
    return [body]
