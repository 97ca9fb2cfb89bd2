"""Listening sockets: parsing ``unix:/path``, ``host:port`` and ``[v6]:port``, and fd 0."""

import os
import socket
import stat

from peak_lite.running.gateways.interfaces import GatewayError

__all__ = ['parseSocketSpec', 'listenOn', 'listeningSocketOnFd', 'BACKLOG']

BACKLOG = 1024


def parseSocketSpec(spec):
    """Return ``(family, address)`` for ``unix:/path``, ``host:port`` or ``[v6]:port``."""
    if not isinstance(spec, str) or not spec:
        raise GatewayError(f"socket {spec!r}: expected unix:/path, host:port or [v6]:port")
    if spec.startswith('unix:'):
        path = spec[5:]
        if not path:
            raise GatewayError(f"socket {spec!r}: the path after 'unix:' is empty")
        return socket.AF_UNIX, path
    if spec.startswith('['):
        host, sep, port = spec[1:].partition(']:')
        family = socket.AF_INET6
    else:
        host, sep, port = spec.rpartition(':')
        family = socket.AF_INET
        if ':' in host:
            raise GatewayError(f"socket {spec!r}: write an IPv6 address as [addr]:port")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise GatewayError(
            f"socket {spec!r}: expected unix:/path, host:port or [v6]:port with a port 0-65535")
    return family, (host or ('::' if family == socket.AF_INET6 else '0.0.0.0'), int(port))


def listenOn(spec, backlog=BACKLOG):
    """Bind and listen on ``spec``; a stale unix socket file at the path is replaced."""
    family, address = parseSocketSpec(spec)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family == socket.AF_UNIX:
            try:
                if stat.S_ISSOCK(os.lstat(address).st_mode):
                    os.unlink(address)
            except FileNotFoundError:
                pass
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as e:
        sock.close()
        raise GatewayError(f"cannot listen on {spec!r}: {e.strerror or e};"
                           " is another server using it, or the directory missing?") from e
    return sock


def listeningSocketOnFd(fd=0):
    """Return a socket object for ``fd`` if it is a listening stream socket, else None.

    The descriptor is duplicated, so closing the returned socket leaves ``fd``
    open.
    """
    try:
        dup = os.dup(fd)
    except OSError:
        return None
    try:
        probe = socket.socket(fileno=dup)
    except OSError:
        os.close(dup)       # not a socket at all
        return None
    try:
        if (probe.type == socket.SOCK_STREAM
                and probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)):
            return probe
    except OSError:
        pass
    probe.close()
    return None


def inheritedListeners(environ):
    """The listening sockets a process manager handed over: fd 0, then ``PEAK_LISTEN_FDS``.

    ``PEAK_LISTEN_FDS`` lists descriptors (``0,3,4``) when there are several.
    Each is duplicated, as listeningSocketOnFd does.
    """
    fds = [0]
    for part in environ.get('PEAK_LISTEN_FDS', '').split(','):
        if part.strip().isdigit() and int(part) not in fds:
            fds.append(int(part))
    return [sock for sock in map(listeningSocketOnFd, fds) if sock is not None]
