"""Apps for the operations tests: access log, stuck-request stacks, memory guard."""

import os
import time

# Filled by ``import tests.procman.ops_big`` in the manager: a large object built
# before forking, shared copy-on-write with every child.
BIG = None
_grown = []


def _text(start_response, body, status='200 OK'):
    data = body.encode()
    start_response(status, [('Content-Type', 'text/plain'), ('Content-Length', str(len(data)))])
    return [data]


def ops(environ, start_response):
    """``/`` pid; ``/fail`` raises; ``/stuck`` hangs in ``hangHere``; ``/grow?MB`` keeps
    MB of fresh private memory; ``/touch`` reads every page of BIG;
    ``/hold?PATH`` reads every page of BIG, if loaded, then waits (bounded) until
    PATH exists."""
    path, query = environ.get('PATH_INFO'), environ.get('QUERY_STRING', '')
    if path == '/fail':
        raise RuntimeError('the application failed on purpose')
    if path == '/stuck':
        hangHere()
    if path == '/grow':
        block = bytearray(int(query or 120) << 20)
        for i in range(0, len(block), 4096):       # every page written: really private
            block[i] = 1
        _grown.append(block)
    if path == '/touch':
        total = sum(BIG[i] for i in range(0, len(BIG), 4096))    # read-only, page by page
        return _text(start_response, f"pid={os.getpid()} sum={total}\n")
    if path == '/hold':
        if BIG is not None:
            sum(BIG[i] for i in range(0, len(BIG), 4096))     # read-only, page by page
        deadline = time.monotonic() + 30
        while not os.path.exists(query) and time.monotonic() < deadline:
            time.sleep(0.01)
    return _text(start_response, f"pid={os.getpid()}\n")


def hangHere():
    """Hang like a request stuck on a lock that is never released."""
    while True:
        time.sleep(0.05)

