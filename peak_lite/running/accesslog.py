"""This process's access log: one line per request, written by the worker that served it.

A process has at most one access log, owned here, like its worker status
(``workerstatus``).  A process manager installs it before forking; a gateway
worker reads ``getAccessLog()`` once, when it is built, and on each request
pays one ``is not None`` test when the log is off.

Formats:

- ``combined``: Apache's combined format plus the duration in microseconds
  (Apache's ``%D``)::

    127.0.0.1 - - [30/Nov/2026:03:55:02 +0000] "GET /a?b=1 HTTP/1.1" 200 12 "-" "curl/8" 1834

- ``json``: one JSON object per line, with the keys ``time`` (ISO 8601),
  ``remote_addr``, ``remote_user``, ``method``, ``uri``, ``protocol``,
  ``status`` (a number, or null when no response went out), ``bytes`` (body
  bytes sent), ``referer``, ``user_agent``, ``duration`` (seconds) and ``pid``.

Each line is one ``write(2)`` on a descriptor opened with ``O_APPEND``, so
lines of several workers sharing the file never interleave.
"""

import json
import logging
import os
import time
from urllib.parse import quote

log = logging.getLogger('peak_lite.running')

__all__ = ['AccessLog', 'FORMATS', 'getAccessLog', 'setAccessLog', 'requestLine']

FORMATS = ('combined', 'json')


class AccessLog:
    """Writes one line per request to descriptor ``fd`` in format ``fmt`` (see FORMATS).

    A gateway calls ``begin(response)`` before serving and
    ``record(environ, response, started)`` after, whatever happened; the
    response is a ``WSGIRequest`` (its ``status`` is the status line sent).
    """

    def __init__(self, fd, fmt='combined'):
        if fmt not in FORMATS:
            raise ValueError(f"access log format {fmt!r}: expected one of {', '.join(FORMATS)}")
        self.fd = fd
        self.fmt = fmt
        self.failing = False
        self._line = _json if fmt == 'json' else _combined

    def begin(self, response):
        """Count the body bytes ``response`` frames; return the start time."""
        frame = response.frameBody
        response.bodyBytes = 0

        def counted(data):
            response.bodyBytes += len(data)
            return frame(data)
        # WSGIRequest._emit looks frameBody up on the instance once per write:
        # only a logged request pays for the count.
        response.frameBody = counted
        return time.time(), time.monotonic()

    def record(self, environ, response, started):
        wall, mono = started
        status = response.status
        line = self._line(environ, int(status[:3]) if status else None,
                          getattr(response, 'bodyBytes', 0), wall,
                          time.monotonic() - mono)
        self.write(line.encode('utf-8', 'backslashreplace'))

    def write(self, data):
        try:
            n = os.write(self.fd, data)
            while n < len(data):         # a short write: only on a full disk or a pipe
                data = data[n:]
                n = os.write(self.fd, data)
        except OSError as e:
            # A full disk must not fail the request: say so once per streak.
            if not self.failing:
                log.error("cannot write the access log: %s; requests are served, "
                          "not logged, until it works again", e.strerror or e)
            self.failing = True
        else:
            self.failing = False


def requestLine(environ):
    """``METHOD URI PROTOCOL`` of a WSGI ``environ``, as the client sent it where known."""
    return (f"{environ.get('REQUEST_METHOD', '-')} {_uri(environ)} "
            f"{environ.get('SERVER_PROTOCOL', '-')}")


def _uri(environ):
    uri = environ.get('REQUEST_URI')
    if uri:
        return uri
    path = quote(environ.get('SCRIPT_NAME', '') + environ.get('PATH_INFO', ''),
                 safe="/;=,@:!$&'()*+~-._")
    query = environ.get('QUERY_STRING')
    return f'{path}?{query}' if query else path


_ESCAPES = {i: f'\\x{i:02x}' for i in range(32)}
_ESCAPES.update({0x7f: '\\x7f', ord('"'): '\\"', ord('\\'): '\\\\'})


def _quoted(text):
    """Apache's escaping of a quoted field: quotes, backslashes and controls as \\xhh."""
    return text.translate(_ESCAPES) if text else '-'


def _combined(environ, status, sent, wall, duration):
    request = requestLine(environ)
    return (f"{environ.get('REMOTE_ADDR') or '-'} - "
            f"{_quoted(environ.get('REMOTE_USER', '')).replace(' ', '_')} "
            f"[{time.strftime('%d/%b/%Y:%H:%M:%S %z', time.localtime(wall))}] "
            f"\"{_quoted(request)}\" {status if status is not None else '-'} "
            f"{sent or '-'} \"{_quoted(environ.get('HTTP_REFERER', ''))}\" "
            f"\"{_quoted(environ.get('HTTP_USER_AGENT', ''))}\" {int(duration * 1e6)}\n")


def _json(environ, status, sent, wall, duration):
    stamp = time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(wall))
    zone = time.strftime('%z', time.localtime(wall))
    return json.dumps({
        'time': f'{stamp}.{int(wall % 1 * 1000):03d}{zone[:3]}:{zone[3:]}',
        'remote_addr': environ.get('REMOTE_ADDR') or None,
        'remote_user': environ.get('REMOTE_USER') or None,
        'method': environ.get('REQUEST_METHOD'),
        'uri': _uri(environ),
        'protocol': environ.get('SERVER_PROTOCOL'),
        'status': status,
        'bytes': sent,
        'referer': environ.get('HTTP_REFERER') or None,
        'user_agent': environ.get('HTTP_USER_AGENT') or None,
        'duration': round(duration, 6),
        'pid': os.getpid(),
    }, ensure_ascii=False) + '\n'


_log = None


def getAccessLog():
    """This process's AccessLog, or None when there is none (the default)."""
    return _log


def setAccessLog(log):
    """Install ``log`` (an AccessLog, or None for none) for this process."""
    global _log
    _log = log
