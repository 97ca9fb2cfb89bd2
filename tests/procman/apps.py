"""WSGI apps that procman tests run in their children."""

import gc
import os
import time


def hello(environ, start_response):
    """Answer with this child's pid; ``/sleep?S`` sleeps S seconds first."""
    if environ.get('PATH_INFO') == '/sleep':
        time.sleep(float(environ.get('QUERY_STRING') or 1))
    if environ.get('PATH_INFO') == '/freeze':
        body = f"freeze_count={gc.get_freeze_count()}\n"
    else:
        body = f"pid={os.getpid()}\n"
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
