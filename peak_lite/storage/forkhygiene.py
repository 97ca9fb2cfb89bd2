"""Fork hygiene: find the network sockets this process holds, so a fork can warn about
the ones every child would inherit."""

import errno
import logging
import os
import socket
import stat

log = logging.getLogger('peak_lite.storage')

_FAMILIES = {socket.AF_INET: 'tcp', socket.AF_INET6: 'tcp6', socket.AF_UNIX: 'unix'}


def _format(family, addr):
    if family == socket.AF_UNIX:
        if isinstance(addr, bytes):
            addr = '@' + addr[1:].decode('utf-8', 'replace') if addr[:1] == b'\0' else addr.decode()
        return addr or '?'
    if family == socket.AF_INET6:
        return f"[{addr[0]}]:{addr[1]}"
    return f"{addr[0]}:{addr[1]}"


def _describe(fd):
    """Return a description of socket ``fd``, or None when it is not a network socket."""
    dup = os.dup(fd)
    try:
        sock = socket.socket(fileno=dup)
    except OSError:
        os.close(dup)
        return None
    with sock:
        family = sock.family
        if family not in _FAMILIES:
            return None
        kind = _FAMILIES[family]
        if sock.type == socket.SOCK_DGRAM and family != socket.AF_UNIX:
            kind = 'udp6' if family == socket.AF_INET6 else 'udp'
        local = sock.getsockname()
        try:
            peer = sock.getpeername()
        except OSError as exc:
            if exc.errno != errno.ENOTCONN:
                raise
            peer = None
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    if family == socket.AF_UNIX and not local and not peer:
        # An unnamed socketpair (an event loop's self-pipe, say) is plumbing,
        # not a connection to anything outside the process.
        return None
    text = f"fd {fd}: {kind} {_format(family, local)}"
    if listening:
        return text + " (listening)"
    if peer:
        return text + f" -> {_format(family, peer)}"
    return text


def inheritedSockets(exclude=()):
    """List ``(fd, description)`` for this process's open network sockets.

    TCP, UDP and named unix sockets count; unnamed socketpairs do not.  The
    fds in ``exclude`` (the listeners a process manager hands to its
    children) are left out.  Sorted by fd.
    """
    skip = set(exclude)
    found = []
    for name in os.listdir('/proc/self/fd'):
        fd = int(name)
        if fd in skip:
            continue
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            description = _describe(fd)
        except OSError as exc:
            if exc.errno != errno.EBADF:  # the listing's own fd, already closed
                log.debug("cannot inspect fd %d", fd, exc_info=True)
            continue
        if description is not None:
            found.append((fd, description))
    return sorted(found)
