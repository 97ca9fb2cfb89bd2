"""Apps that the manager-core tests run in real children."""

import os
import socket
import sys
import time

from peak_lite import binding


def _text(start_response, body):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]


def core(environ, start_response):
    """``/`` pid; ``/stack`` the files on this worker's stack; ``/sleep?S``;
    ``/spawn`` leaves a grandchild holding the listener (fd 0), prints its pid;
    """
    path, query = environ.get('PATH_INFO'), environ.get('QUERY_STRING', '')
    if path == '/stack':
        frame, files = sys._getframe(), []
        while frame is not None:
            files.append(frame.f_code.co_filename)
            frame = frame.f_back
        return _text(start_response, '\n'.join(files) + '\n')
    if path == '/sleep':
        time.sleep(float(query or 1))
    elif path == '/spawn':
        return _text(start_response, f"grandchild={_spawnHolder()}\n")
    return _text(start_response, f"pid={os.getpid()}\n")


def _listenerFd():
    """The worker's own copy of the listening socket (fd 0 reads /dev/null by now)."""
    for name in os.listdir('/proc/self/fd'):
        fd = int(name)
        try:
            probe = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        try:
            if probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                return fd
        except OSError:
            pass
        finally:
            probe.close()
    raise RuntimeError("no listening socket in this worker")


def _spawnHolder():
    """Fork a grandchild that keeps the listener open and sleeps: the worst an app can do."""
    listener = socket.socket(fileno=os.dup(_listenerFd()))
    listener.set_inheritable(True)
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            time.sleep(600)
        finally:
            os._exit(0)
    listener.close()
    return pid


class SlowWhenFlagged(binding.Component):
    """Assembles at once, or, while the file $SLOW_FLAG exists, sleeps 60 s first.

    Each assembly appends its pid to $PRELOAD_MARK.
    """

    def uponAssembly(self):
        with open(os.environ['PRELOAD_MARK'], 'a') as f:
            f.write(f"{os.getpid()}\n")
        if os.path.exists(os.environ['SLOW_FLAG']):
            time.sleep(60)
        super().uponAssembly()

    def __call__(self, environ, start_response):
        return core(environ, start_response)
