"""The small WSGI apps every server runs in the benchmarks.

Plain WSGI callables with no imports beyond the standard library, so the
peers' own virtualenv can import them from the project root as well.

- ``hello``: ``/`` says hello; ``/10k`` answers 10 KB; ``/sleep?S`` sleeps
  S seconds first (the scale-up and reload loads use 0.1).
"""

import os
import time

HELLO = b"Hello, world!\n"
TEN_KB = (b"0123456789abcdef" * 64 + b"\n") * 10   # 10,250 bytes
TEN_KB = TEN_KB[:10240]


def hello(environ, start_response):
    """See the module docstring."""
    path = environ.get('PATH_INFO') or '/'
    if path == '/10k':
        body = TEN_KB
    elif path == '/sleep':
        time.sleep(float(environ.get('QUERY_STRING') or 0.1))
        body = HELLO
    elif path == '/pid':
        body = f"{os.getpid()}\n".encode()
    else:
        body = HELLO
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
