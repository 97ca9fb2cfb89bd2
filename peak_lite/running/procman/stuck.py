"""The Python stack of a stuck request: armed in each child, read by the manager.

Before RequestTimeout kills a child, the manager sends it ``STACK_SIGNAL``.
In the child, ``faulthandler`` answers from C, at once, even when the
request is stuck inside a C call that never returns to Python: it writes
every thread's Python stack into an anonymous memory file (``memfd``) the
child made at start.  Chained after it, a Python-level handler adds the
request line (``request: GET /path HTTP/1.1``), found in the ``environ``
of the innermost frame that has one; it runs as soon as the interpreter
gets control back, which a request stuck in C may never give it.

The manager reads that file through ``/proc/PID/fd`` (it is the child's
parent, and root or the child's user), waits ``STACK_WAIT`` for the dump,
logs it with the request line and its age, and only then kills the child.
Nothing of this runs on the request path.
"""

import faulthandler
import os
import signal
import sys

from peak_lite.running.accesslog import requestLine

__all__ = ['armStackDump', 'dumpSize', 'readStack', 'STACK_SIGNAL', 'STACK_WAIT']

#: A real-time signal: applications and their main-loop handlers (a ChildConfig
#: may set one) use SIGUSR1 and SIGUSR2; a handler they install would replace
#: faulthandler's.  Its default action, like SIGUSR2's, ends the process.
STACK_SIGNAL = signal.SIGRTMIN + 3
#: From asking for the stack to the kill: faulthandler writes within
#: microseconds; the request line waits for the interpreter's next check.
STACK_WAIT = 0.2
MEMFD_NAME = 'peak-stack'
MAX_STACK = 256 * 1024


def armStackDump():
    """In a child, at start: dump the stack and the request line on STACK_SIGNAL."""
    fd = os.memfd_create(MEMFD_NAME)       # close-on-exec
    handler = _RequestLine(fd)
    # The Python handler first: faulthandler chains to the handler it replaces.
    signal.signal(STACK_SIGNAL, handler)
    faulthandler.register(STACK_SIGNAL, file=fd, all_threads=True, chain=True)
    return fd


class _RequestLine:
    def __init__(self, fd):
        self.fd = fd

    def __call__(self, signum, frame):
        while frame is not None:
            environ = frame.f_locals.get('environ')
            if isinstance(environ, dict) and 'REQUEST_METHOD' in environ:
                text = f"request: {requestLine(environ)}\n"
                break
            frame = frame.f_back
        else:
            text = "request: unknown (no WSGI environ on the main thread's stack)\n"
        try:
            os.write(self.fd, text.encode('utf-8', 'backslashreplace'))
        except OSError as e:
            print(f"cannot record the stuck request line: {e}", file=sys.stderr)


def _dumpFile(pid):
    """The path of child ``pid``'s dump file under /proc, or None."""
    try:
        names = os.listdir(f'/proc/{pid}/fd')
    except OSError:
        return None
    for name in names:
        path = f'/proc/{pid}/fd/{name}'
        try:
            if os.readlink(path).startswith(f'/memfd:{MEMFD_NAME}'):
                return path
        except OSError:
            continue
    return None


def dumpSize(pid):
    """How much child ``pid`` has dumped so far: where its next dump will start."""
    path = _dumpFile(pid)
    try:
        return os.stat(path).st_size if path else 0
    except OSError:
        return 0


def readStack(pid, start=0):
    """``(request line or None, stack text or None)`` child ``pid`` dumped after ``start``."""
    path = _dumpFile(pid)
    if path is None:
        return None, None
    try:
        with open(path, 'rb') as f:
            f.seek(start)
            text = f.read(MAX_STACK).decode('utf-8', 'replace')
    except OSError:
        return None, None
    request, stack = None, []
    for line in text.splitlines():
        if line.startswith('request: '):
            request = line[len('request: '):]
        else:
            stack.append(line)
    return request, '\n'.join(stack).strip() or None
