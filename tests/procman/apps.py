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


def _slowPreloadClass():
    from peak_lite import binding

    class SlowPreload(binding.Component):
        """Takes 1.5 s to assemble, writing $PRELOAD_MARK first, so a test can signal it."""

        def uponAssembly(self):
            with open(os.environ['PRELOAD_MARK'], 'a') as f:
                f.write(f"{os.getpid()}\n")
            time.sleep(1.5)
            super().uponAssembly()

        def __call__(self, environ, start_response):
            return hello(environ, start_response)
    return SlowPreload


SlowPreload = _slowPreloadClass()


def whoami(environ, start_response):
    """Answer with this child's uid and gid."""
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [f"uid={os.getuid()} gid={os.getgid()}\n".encode()]
