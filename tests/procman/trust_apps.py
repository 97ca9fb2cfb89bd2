"""A WSGI app for the tests of what a child may reach: ids, descriptors, its stderr."""

import ctypes
import os
import select

PR_GET_PDEATHSIG = 2


def app(environ, start_response):
    """``/ids``, ``/fds``, ``/log?TEXT`` (to fd 2), ``/hold?S`` (waits S seconds), else pid."""
    path, query = environ.get('PATH_INFO'), environ.get('QUERY_STRING', '')
    if path == '/ids':
        body = (f"uid={os.getuid()} gid={os.getgid()} "
                f"groups={','.join(map(str, sorted(os.getgroups())))} "
                f"pdeathsig={_pdeathsig()}")
    elif path == '/fds':
        body = '\n'.join(f"{fd} {_target(fd)}" for fd in sorted(map(int, os.listdir('/proc/self/fd'))))
    elif path == '/log':
        os.write(2, f"{query} from {os.getpid()}\n".encode())
        body = f"pid={os.getpid()}"
    elif path == '/hold':
        # select(), not time.sleep(): the clock test runs under libfaketime, whose
        # clock_nanosleep fails while the monotonic clock is left alone.
        select.select([], [], [], float(query or 1))
        body = f"pid={os.getpid()}"
    else:
        body = f"pid={os.getpid()}"
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [(body + '\n').encode()]


def _pdeathsig():
    libc = ctypes.CDLL(None, use_errno=True)
    value = ctypes.c_int(-1)
    libc.prctl(PR_GET_PDEATHSIG, ctypes.byref(value), 0, 0, 0)
    return value.value


def _target(fd):
    try:
        return os.readlink(f'/proc/self/fd/{fd}')
    except OSError:
        return '?'
