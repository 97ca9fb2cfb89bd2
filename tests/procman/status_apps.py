"""The WSGI app the status listener's tests run in their children."""

import os
import time


def app(environ, start_response):
    """``/sleep?S`` sleeps S seconds; ``/code/N`` answers status N; ``/boom`` raises
    (the gateway answers 500); anything else answers 200 with the child's pid."""
    path = environ.get('PATH_INFO', '')
    if path == '/sleep':
        time.sleep(float(environ.get('QUERY_STRING') or 1))
    if path == '/boom':
        raise RuntimeError("boom, as asked")
    code = int(path[6:]) if path.startswith('/code/') else 200
    start_response(f'{code} Status', [('Content-Type', 'text/plain')])
    return [f"pid={os.getpid()}\n".encode()]
