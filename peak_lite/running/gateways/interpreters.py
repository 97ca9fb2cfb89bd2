"""The ``CGI``, ``WSGI``, ``FastCGI`` and ``HTTP`` shortcuts of the ``peak`` command.

Each is an ICmdLineAppFactory.  Calling it interprets its arguments there
and then: the application is imported and built eagerly (so procman builds
it before forking), and the result is a GatewayCommand ready to serve.

    peak CGI pkg.mod:app              FastCGI on fd 0 if it listens, else one CGI request
    peak WSGI pkg.mod:app             the same as CGI
    peak FastCGI SOCKET pkg.mod:app   FastCGI on SOCKET (unix:/path, host:port, [v6]:port)
    peak HTTP [SOCKET] pkg.mod:app    HTTP/1.1 on SOCKET, or on fd 0 if it listens

Options, before the positional arguments: ``--read-timeout=SECONDS`` (how
long a started request may wait for more bytes, default 30) and
``--idle-timeout=SECONDS`` (close connections idle between requests after
that long; default 15 for HTTP, never for FastCGI, whose peer manages them).
"""

import os
import sys

from zope.interface import provider

from peak_lite.running.gateways.appspec import resolveApp
from peak_lite.running.gateways.gateway import CGI, FASTCGI, HTTP, GatewayCommand
from peak_lite.running.interfaces import ICmdLineAppFactory, InvocationError

__all__ = ['CGIInterpreter', 'WSGIInterpreter', 'FastCGIInterpreter', 'HTTPInterpreter']


_OPTIONS = {'--read-timeout': 'readTimeout', '--idle-timeout': 'idleTimeout'}


class _GatewayInterpreter:
    """Base of the shortcuts; ``__new__`` returns the built GatewayCommand."""

    protocol = CGI
    name = 'CGI'
    minArgs = maxArgs = 1
    usage = 'CGI pkg.module:app'

    def __new__(cls, parentComponent=None, componentName=None, argv=None, stdin=None,
                stdout=None, stderr=None, environ=None, **attrs):
        args = list(argv[1:]) if argv else []
        if args[:1] in (['--help'], ['-h']):
            raise InvocationError(f"usage: peak {cls.usage}")
        while args and args[0].startswith('--'):
            name, _, value = args.pop(0).partition('=')
            key = _OPTIONS.get(name)
            if key is None:
                raise InvocationError(
                    f"{cls.name}: unknown option {name!r}; known: {', '.join(_OPTIONS)}")
            try:
                attrs[key] = float(value)
                if attrs[key] <= 0:
                    raise ValueError(value)
            except ValueError:
                raise InvocationError(
                    f"{cls.name}: {name} needs a number of seconds > 0, got {value!r}") from None
        if not cls.minArgs <= len(args) <= cls.maxArgs:
            raise InvocationError(
                f"{cls.name}: expected {cls.usage!r}, got {len(args)} argument(s) {args!r}")
        socket = args[0] if len(args) == 2 else None
        app = resolveApp(parentComponent, args[-1])
        return GatewayCommand(
            app, cls.protocol, socket, parentComponent,
            stdin=sys.stdin if stdin is None else stdin,
            stdout=sys.stdout if stdout is None else stdout,
            stderr=sys.stderr if stderr is None else stderr,
            environ=os.environ if environ is None else environ, **attrs)


@provider(ICmdLineAppFactory)
class CGIInterpreter(_GatewayInterpreter):
    """``CGI pkg.mod:app``: FastCGI on a listening fd 0, else one plain CGI request."""


@provider(ICmdLineAppFactory)
class WSGIInterpreter(_GatewayInterpreter):
    """``WSGI pkg.mod:app``: an alias of CGI."""

    name = 'WSGI'
    usage = 'WSGI pkg.module:app'


@provider(ICmdLineAppFactory)
class FastCGIInterpreter(_GatewayInterpreter):
    """``FastCGI SOCKET pkg.mod:app``: a FastCGI server listening on SOCKET."""

    protocol = FASTCGI
    name = 'FastCGI'
    minArgs = maxArgs = 2
    usage = 'FastCGI unix:/path|host:port|[v6]:port pkg.module:app'


@provider(ICmdLineAppFactory)
class HTTPInterpreter(_GatewayInterpreter):
    """``HTTP [SOCKET] pkg.mod:app``: HTTP/1.1 on SOCKET or a listening fd 0."""

    protocol = HTTP
    name = 'HTTP'
    minArgs, maxArgs = 1, 2
    usage = 'HTTP [unix:/path|host:port|[v6]:port] pkg.module:app'
