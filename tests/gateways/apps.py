"""WSGI applications the gateway tests serve."""

import hashlib
import os
import sys
import wsgiref.validate

from peak_lite import binding


def hello(environ, start_response):
    body = b'Hello, world!\n'
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]


def echo(environ, start_response):
    """Report the request: method, path, query, body checksum and size, pid."""
    data = environ['wsgi.input'].read(int(environ.get('CONTENT_LENGTH') or 0))
    lines = [f"method={environ['REQUEST_METHOD']}",
             f"path={environ.get('PATH_INFO', '')}",
             f"query={environ.get('QUERY_STRING', '')}",
             f"length={len(data)}",
             f"sha256={hashlib.sha256(data).hexdigest()}",
             f"pid={os.getpid()}"]
    body = ('\n'.join(lines) + '\n').encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]


def checksum(environ, start_response):
    """Read wsgi.input in pieces and return its sha256 and size."""
    h = hashlib.sha256()
    n = 0
    stream = environ['wsgi.input']
    length = int(environ.get('CONTENT_LENGTH') or 0)
    while n < length:
        chunk = stream.read(min(65536, length - n))
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
    body = f"{n} {h.hexdigest()}\n".encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]


def stream(environ, start_response):
    """A generator response of 100 numbered lines, with no Content-Length."""
    start_response('200 OK', [('Content-Type', 'text/plain')])

    def lines():
        for i in range(100):
            yield f"line {i}\n".encode()
    return lines()


def boom(environ, start_response):
    raise RuntimeError('boom: the application failed on purpose')


def badstatus(environ, start_response):
    start_response('OK', [])
    return [b'x']


def twice(environ, start_response):
    start_response('200 OK', [])
    start_response('200 OK', [])
    return [b'x']


def twoLengths(environ, start_response):
    start_response('200 OK', [('Content-Length', '1'), ('Content-Length', '2')])
    return [b'x']


def errors(environ, start_response):
    environ['wsgi.errors'].write('a message on wsgi.errors\n')
    return hello(environ, start_response)


def pid(environ, start_response):
    body = str(os.getpid()).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]


def slow(environ, start_response):
    """Sleep for ?seconds, then answer (for in-flight stop tests)."""
    import time
    time.sleep(float(environ.get('QUERY_STRING') or 0.5))
    return pid(environ, start_response)


validHello = wsgiref.validate.validator(hello)
validEcho = wsgiref.validate.validator(echo)
validStream = wsgiref.validate.validator(stream)


class HelloComponent(binding.Component):
    """A component class the gateways build under the root and call."""

    greeting = binding.Make(lambda: b'Hello from a component\n', uponAssembly=True)

    def __call__(self, environ, start_response):
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [self.greeting]


def marked(environ, start_response):
    """Create the file named by the X-Mark header, then sleep ?seconds and answer."""
    import time
    with open(environ['HTTP_X_MARK'], 'w'):
        pass
    time.sleep(float(environ.get('QUERY_STRING') or 1))
    return pid(environ, start_response)


def main():
    """``python -m tests.gateways.apps PROTOCOL [SOCKET] SPEC``: serve without the peak command."""
    from peak_lite.running import gateways
    factories = {'CGI': gateways.CGIInterpreter, 'FastCGI': gateways.FastCGIInterpreter,
                 'HTTP': gateways.HTTPInterpreter, 'WSGI': gateways.WSGIInterpreter}
    command = factories[sys.argv[1]](None, argv=sys.argv[1:], stdin=sys.stdin,
                                     stdout=sys.stdout, stderr=sys.stderr, environ=os.environ)
    sys.exit(command.run())


if __name__ == '__main__':
    main()

