"""What the kernel knows about the pool: each listener's accept queue, each child's memory.

Accept queues:
- TCP: ``getsockopt(TCP_INFO)`` on the listening socket itself.  For a socket
  in LISTEN state Linux reports the accept queue's length in
  ``tcpi_unacked`` and its limit (the backlog) in ``tcpi_sacked``.  One
  system call per listener, no file to parse.
- unix: one ``sock_diag`` netlink dump of the listening unix sockets with
  ``UDIAG_SHOW_RQLEN``, matched by inode; for a listening socket ``rqueue``
  is the accept queue's length and ``wqueue`` its limit.  (``/proc/net/unix``
  shows no queue lengths.)

Memory: ``/proc/PID/smaps_rollup``: RSS, PSS, and USS as Private_Clean +
Private_Dirty (pages no other process maps).  Read at most once per
MEMORY_CACHE seconds per child, however often the page is scraped.
"""

import os
import socket
import struct
import time

__all__ = ['queueLengths', 'MemoryReader', 'MEMORY_CACHE']

MEMORY_CACHE = 1.0
_TCP_INFO_QUEUE = struct.Struct('<II')     # tcpi_unacked, tcpi_sacked
_TCP_INFO_QUEUE_OFFSET = 24
_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSG_DONE, _NLMSG_ERROR = 3, 2
_UDIAG_SHOW_RQLEN = 0x10
_UNIX_DIAG_RQLEN = 4
_TCP_LISTEN = 10
_NLMSG = struct.Struct('<IHHII')
_UNIX_DIAG_REQ = struct.Struct('<BBHIIIII')
_UNIX_DIAG_MSG = struct.Struct('<BBBBIII')
_RTATTR = struct.Struct('<HH')


def queueLengths(sockets):
    """[(socket, length, limit)] for the listening ``sockets``; None where unknown."""
    unix = [s for s in sockets if s.family == socket.AF_UNIX]
    diag = _unixQueues() if unix else {}
    result = []
    for sock in sockets:
        if sock.family == socket.AF_UNIX:
            length, limit = diag.get(os.fstat(sock.fileno()).st_ino, (None, None))
        else:
            length, limit = _tcpQueue(sock)
        result.append((sock, length, limit))
    return result


def _tcpQueue(sock):
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    except OSError:
        return None, None
    if len(info) < _TCP_INFO_QUEUE_OFFSET + 8:
        return None, None
    return _TCP_INFO_QUEUE.unpack_from(info, _TCP_INFO_QUEUE_OFFSET)


def _unixQueues():
    """{inode: (accept queue length, limit)} of every listening unix socket."""
    request = _UNIX_DIAG_REQ.pack(socket.AF_UNIX, 0, 0, 1 << _TCP_LISTEN, 0,
                                  _UDIAG_SHOW_RQLEN, 0xFFFFFFFF, 0xFFFFFFFF)
    header = _NLMSG.pack(_NLMSG.size + len(request), _SOCK_DIAG_BY_FAMILY,
                         _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0)
    found = {}
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
            nl.settimeout(1.0)      # the kernel answers at once; never hang the loop
            nl.sendto(header + request, (0, 0))
            while True:
                data = nl.recv(65536)
                if not data or not _parseDump(data, found):
                    return found
    except OSError:
        return found


def _parseDump(data, found):
    """Add the records of one netlink datagram to ``found``; False once the dump is done."""
    offset = 0
    while offset + _NLMSG.size <= len(data):
        length, kind, _, _, _ = _NLMSG.unpack_from(data, offset)
        if kind in (_NLMSG_DONE, _NLMSG_ERROR) or length < _NLMSG.size:
            return False
        body = offset + _NLMSG.size
        inode = _UNIX_DIAG_MSG.unpack_from(data, body)[4]
        attr = body + _UNIX_DIAG_MSG.size
        while attr + _RTATTR.size <= offset + length:
            size, kind = _RTATTR.unpack_from(data, attr)
            if size < _RTATTR.size:
                break
            if kind == _UNIX_DIAG_RQLEN:
                found[inode] = struct.unpack_from('<II', data, attr + _RTATTR.size)
            attr += (size + 3) & ~3
        offset += (length + 3) & ~3
    return True


class MemoryReader:
    """``read(pid)`` -> {'uss', 'pss', 'rss'} in bytes, or None; cached MEMORY_CACHE seconds."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.cache = {}

    def read(self, pid):
        now = self.clock()
        hit = self.cache.get(pid)
        if hit is not None and now - hit[0] < MEMORY_CACHE:
            return hit[1]
        value = _smapsRollup(pid)
        self.cache[pid] = (now, value)
        return value

    def forget(self, live):
        """Drop the entries of pids not in ``live``."""
        for pid in set(self.cache) - set(live):
            del self.cache[pid]


def _smapsRollup(pid):
    fields = {}
    try:
        with open(f'/proc/{pid}/smaps_rollup', 'rb') as f:
            for line in f:
                name, _, rest = line.partition(b':')
                if name in (b'Rss', b'Pss', b'Private_Clean', b'Private_Dirty'):
                    fields[name] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    if b'Rss' not in fields:
        return None
    return dict(uss=fields.get(b'Private_Clean', 0) + fields.get(b'Private_Dirty', 0),
                pss=fields.get(b'Pss', 0), rss=fields[b'Rss'])
