"""The preloaded heap in huge pages, before the first fork (``HugePages on``).

A child of the manager gets a copy of the manager's page tables at fork,
and gives them back at exit.  With 4 KB pages that is one entry per page
of the preloaded app: 60,000 entries for a 250 MB heap, each one taking a
reference on its page at fork and dropping it at exit.  Forking such a
manager takes several milliseconds, and so does the death of each child,
before its parent even hears of it (the kernel tears the child's memory
down before it signals the exit).

So once the app is built, the manager asks the kernel
(``madvise(MADV_COLLAPSE)``, Linux 6.1 and later) to move each aligned
2 MB chunk of its private anonymous memory that is at least
``MIN_RESIDENT`` in use into one transparent huge page: one entry instead
of 512.  A child still shares every page with the manager; its first write
into a chunk splits that chunk's entry back into 4 KB ones and copies only
the 4 KB it wrote, as before.  A chunk less used than ``MIN_RESIDENT`` is
left alone, so the heap grows by at most the unused rest of the chunks
collapsed (under 10 %).

It is best effort: a kernel without ``MADV_COLLAPSE``, with huge pages
turned off, or short of free 2 MB blocks, leaves the chunk as it was.
"""

import ctypes
import logging
import mmap
import os
import time

log = logging.getLogger('peak_lite.procman')

__all__ = ['collapseHeap']

MADV_COLLAPSE = 25
HUGE = 2 << 20
PAGES = HUGE // mmap.PAGESIZE
MIN_RESIDENT = 0.9


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    return libc


def _anonymousRegions(maps='/proc/self/maps'):
    """``(start, end)`` of each private, writable, anonymous mapping: malloc's heap
    and the anonymous maps (Python's arenas among them), not the stack."""
    with open(maps) as f:
        for line in f:
            fields = line.split()
            if fields[1] == 'rw-p' and (len(fields) == 5 or fields[5] == '[heap]'):
                start, end = (int(x, 16) for x in fields[0].split('-'))
                yield start, end


def _chunks(start, end):
    chunk = (start + HUGE - 1) & ~(HUGE - 1)
    while chunk + HUGE <= end:
        yield chunk
        chunk += HUGE


def collapseHeap():
    """Collapse the well-used 2 MB chunks of this process's heap; log what was done.

    Returns ``(collapsed, candidates)``.
    """
    started = time.monotonic()
    libc = _libc()
    resident = (ctypes.c_ubyte * PAGES)()
    candidates = collapsed = 0
    unsupported = None
    for start, end in _anonymousRegions():
        for chunk in _chunks(start, end):
            if libc.mincore(chunk, HUGE, resident) != 0:
                continue
            if PAGES - bytes(resident).count(0) < MIN_RESIDENT * PAGES:
                continue
            candidates += 1
            if libc.madvise(chunk, HUGE, MADV_COLLAPSE) == 0:
                collapsed += 1
            elif unsupported is None:
                unsupported = ctypes.get_errno()
    if candidates:
        reason = f" ({_strerror(unsupported)})" if collapsed < candidates else ""
        log.info("HugePages: %d of %d well-used 2 MB chunks of the heap in huge pages%s, "
                 "in %.0f ms", collapsed, candidates, reason,
                 (time.monotonic() - started) * 1000)
    return collapsed, candidates


def _strerror(errno):
    return os.strerror(errno) if errno else "refused"
