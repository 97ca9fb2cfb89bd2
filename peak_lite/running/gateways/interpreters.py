"""The ``CGI``, ``WSGI``, ``FastCGI`` and ``HTTP`` shortcuts of the ``peak`` command.

Each is an AbstractInterpreter: calling it interprets its arguments there
and then.  The application is imported and built eagerly (so procman builds
it before forking) under the interpreter's parent, and the result is a
GatewayCommand ready to serve::

    peak CGI pkg.mod:app              FastCGI on fd 0 if it listens, else one CGI request
    peak WSGI pkg.mod:app             the same as CGI
    peak FastCGI SOCKET pkg.mod:app   FastCGI on SOCKET (unix:/path, host:port, [v6]:port)
    peak HTTP [SOCKET] pkg.mod:app    HTTP/1.1 on SOCKET, or on fd 0 if it listens

Options may come before or after the socket and the app, so that words
appended to a procman ``Command`` (``CGI pkg.mod:app --debug``) are options.
"""

from peak_lite.running.abstract import AbstractInterpreter, _UsageCommand
from peak_lite.running.gateways.appspec import resolveApp
from peak_lite.running.gateways.command import CGI, FASTCGI, HTTP, GatewayCommand
from peak_lite.running.interfaces import InvocationError
from peak_lite.running.options import Option, optionsOf, parseOptions

__all__ = ['CGIInterpreter', 'WSGIInterpreter', 'FastCGIInterpreter', 'HTTPInterpreter']


def seconds(text):
    value = float(text)
    if not value > 0:
        raise ValueError("must be a number of seconds > 0")
    return value


class _GatewayInterpreter(AbstractInterpreter):
    """Base of the gateway shortcuts: ``[options] [SOCKET] APP`` to a GatewayCommand."""

    protocol = CGI
    socketArgument = 'none'      # 'none', 'required' or 'optional'

    readTimeout = Option('--read-timeout', type=seconds, default=30.0, metavar='SECONDS',
                         help="how long a started request may wait for more bytes (30)")
    idleTimeout = Option('--idle-timeout', type=seconds, default=0, metavar='SECONDS',
                         help="close connections idle between requests after this long"
                              " (0: HTTP 15, FastCGI never, as the web server manages them)")

    def interpret(self, subject):
        args = self._positionalArguments()
        if self.helpRequested:
            return _UsageCommand(self.getUsage(), self.stdout)
        wanted = {'none': (1,), 'required': (2,), 'optional': (1, 2)}[self.socketArgument]
        if len(args) not in wanted:
            synopsis = self.usage.strip().splitlines()[0]
            raise InvocationError(
                f"{self.commandName}: expected {' or '.join(map(str, wanted))} argument(s),"
                f" got {args!r}; {synopsis}")
        socket = args[0] if len(args) == 2 else None
        parent = self.getParentComponent()
        return GatewayCommand(
            resolveApp(parent, args[-1]), self.protocol, socket, parent,
            stdin=self.stdin, stdout=self.stdout, stderr=self.stderr, environ=self.environ,
            readTimeout=self.readTimeout, idleTimeout=self.idleTimeout)

    def _positionalArguments(self):
        """``self.args`` without the options found among them, which are applied.

        A gateway has no arguments of its own to pass on, so options after
        the socket or the app are as good as options before them; ``--``
        ends the options.
        """
        words = list(self.args)
        tail = []
        if '--' in words:
            at = words.index('--')
            words, tail = words[:at], words[at + 1:]
        positional, options = [], optionsOf(type(self))
        while words:
            if words[0].startswith('-') and words[0] != '-':
                values, words, wantHelp = parseOptions(self.commandName, words, options)
                self.applyOptions(values)
                self.helpRequested = self.helpRequested or wantHelp
            else:
                positional.append(words.pop(0))
        positional.extend(tail)
        return positional


class CGIInterpreter(_GatewayInterpreter):
    """Serve a WSGI app: FastCGI if fd 0 is a listening socket, else one plain CGI request."""

    usage = """Usage: peak CGI [options] pkg.module:app [options]

If fd 0 is a listening socket (as procman, mod_fcgid, mod_fastcgi and
supervisord's fcgi-program pass it), serve FastCGI on it until stopped;
otherwise serve one CGI request (RFC 3875) from the environment and stdin.
The app is a WSGI callable, or a peak_lite component class built under the
root and adapted to IWSGIApplication.
"""


class WSGIInterpreter(CGIInterpreter):
    """The same as CGI: FastCGI on a listening fd 0, else one plain CGI request."""

    usage = CGIInterpreter.usage.replace('peak CGI', 'peak WSGI', 1)


class FastCGIInterpreter(_GatewayInterpreter):
    """Serve a WSGI app over FastCGI on SOCKET (unix:/path, host:port or [v6]:port)."""

    protocol = FASTCGI
    socketArgument = 'required'
    usage = """Usage: peak FastCGI [options] SOCKET pkg.module:app [options]

SOCKET is unix:/path[:mode], host:port, [v6]:port or fd:N.  A stale unix
socket file (nobody accepts on it) is replaced; a live server's is refused.  Put a web server's fastcgi_pass (nginx) or mod_proxy_fcgi
(Apache) in front.
"""


class HTTPInterpreter(_GatewayInterpreter):
    """Serve a WSGI app over HTTP/1.1 on SOCKET, or on fd 0 if it is a listening socket."""

    protocol = HTTP
    socketArgument = 'optional'
    usage = """Usage: peak HTTP [options] [SOCKET] pkg.module:app [options]

HTTP/1.1 with keep-alive, meant to sit behind a reverse proxy.  Without
SOCKET, fd 0 must be a listening socket.
"""
