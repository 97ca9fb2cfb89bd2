"""One request's scope in a worker: busy in the scoreboard, interruptible, known to the pool.

``During`` combines ``with busy, interruptible:`` in one plain class (cheaper
than ``contextlib``) and, as the request ends, tells the worker status the
response's status code.
"""

import contextlib
import sys

__all__ = ['During', 'nothing', 'requestLine']


def nothing():
    return contextlib.nullcontext()


def requestLine(environ):
    """``METHOD target`` of a request, for status pages (the scoreboard keeps 64 bytes)."""
    target = environ.get('REQUEST_URI')
    if not target:
        query = environ.get('QUERY_STRING')
        target = environ.get('PATH_INFO', '') + ('?' + query if query else '')
    return f"{environ.get('REQUEST_METHOD', '-')} {target[:56]}"


class During:
    """``with busy, interruptible:`` as one context manager (a plain class: cheaper).

    It also tells the pool when the request starts and ends (see handoff.py).
    """

    __slots__ = ('busy', 'interruptible', 'worker', 'response')

    def __init__(self, busy, interruptible, worker, response):
        self.busy = busy
        self.interruptible = interruptible
        self.worker = worker
        self.response = response

    def __enter__(self):
        self.busy.__enter__()
        try:
            self.interruptible.__enter__()
        except BaseException:
            self.busy.__exit__(*sys.exc_info())
            raise
        pool = self.worker.pool
        if pool is not None:
            pool.requestStarted(self.worker)

    def __exit__(self, excType, exc, tb):
        worker = self.worker
        pool = worker.pool
        if pool is not None:
            pool.requestEnded()
        response = self.response
        if response is not None and response.status is not None:
            code = response.status[:3]
            if code.isdigit():
                worker.status.responded(int(code))
        try:
            suppressed = self.interruptible.__exit__(excType, exc, tb)
        except BaseException:
            if not self.busy.__exit__(*sys.exc_info()):
                raise
            return True
        if suppressed:
            excType = exc = tb = None
        return self.busy.__exit__(excType, exc, tb) or suppressed
