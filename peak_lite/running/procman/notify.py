"""systemd's notify protocol: READY=1, RELOADING=1, STOPPING=1, STATUS=..."""

import logging
import socket

log = logging.getLogger('peak_lite.procman')

__all__ = ['Notifier']


class Notifier:
    """Sends datagrams to ``$NOTIFY_SOCKET``; does nothing when it is unset."""

    def __init__(self, environ):
        path = environ.get('NOTIFY_SOCKET') or None
        if path and path.startswith('@'):
            path = '\0' + path[1:]
        self.path = path
        self.sock = None
        self.lastStatus = None

    def send(self, *lines):
        if not self.path:
            return False
        if self.sock is None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.sock.sendto('\n'.join(lines).encode(), self.path)
        except OSError as e:
            log.warning("notify %s failed: %s", self.path.lstrip('\0'), e.strerror)
            return False
        return True

    def status(self, text):
        """Send STATUS= only when it changed."""
        if text != self.lastStatus:
            self.lastStatus = text
            self.send(f'STATUS={text}')

    def fds(self):
        return [self.sock.fileno()] if self.sock is not None else []

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
