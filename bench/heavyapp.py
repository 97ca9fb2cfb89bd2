"""A heavy WSGI app: about 1.5 s to import and a ~200 MB cache of gc-tracked objects.

Importing this module is the expensive part, as in a large real application:
the cache is built at import time.  ``BENCH_CACHE_MB`` (default 200) and
``BENCH_IMPORT_S`` (default 1.5) change its size and the minimum import time.

- ``/`` answers this process's pid;
- ``/gc?S`` sleeps S seconds (so that concurrent calls reach every worker),
  runs a full ``gc.collect()`` and answers pid, requests served and the
  collected count;
- ``/sleep?S`` sleeps S seconds first.

With ``BENCH_VERSION_FILE`` set, the file's first line (read at import) follows
the pid in ``/`` and ``/sleep``: it shows which code a worker runs.
"""

import gc
import os
import time

_start = time.monotonic()


def _buildCache(megabytes):
    # A dict holding a list per entry: lists are always gc-tracked and keep
    # their dict tracked (tuples of atomic values would be untracked by the
    # first collection), so a full collection in a forked child writes the GC
    # header of every entry and un-shares the pages they sit on.
    cache = []
    per_entry = 340        # measured RSS per entry (dict, list, str, ints) on CPython 3.11
    for i in range(megabytes * 1024 * 1024 // per_entry):
        cache.append({'id': i, 'pair': [i, str(i)]})
    return cache


CACHE = _buildCache(int(os.environ.get('BENCH_CACHE_MB', '200')))
_rest = float(os.environ.get('BENCH_IMPORT_S', '1.5')) - (time.monotonic() - _start)
if _rest > 0:
    time.sleep(_rest)
IMPORT_SECONDS = time.monotonic() - _start
VERSION = ''
if os.environ.get('BENCH_VERSION_FILE'):
    with open(os.environ['BENCH_VERSION_FILE']) as _f:
        VERSION = ' ' + _f.readline().strip()
_served = 0


def app(environ, start_response):
    """See the module docstring."""
    global _served
    _served += 1
    path = environ.get('PATH_INFO') or '/'
    if path == '/gc':
        time.sleep(float(environ.get('QUERY_STRING') or 0))
        body = (f"pid={os.getpid()} served={_served} collected={gc.collect()} "
                f"frozen={gc.get_freeze_count()}\n").encode()
    else:
        if path == '/sleep':
            time.sleep(float(environ.get('QUERY_STRING') or 0.1))
        body = f"{os.getpid()}{VERSION}\n".encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
