"""How cold this machine's memory gets: what one 4 KB page costs on its first touch
after it was left alone for a while.

On some virtual machines the host makes guest memory that nobody touched
for a moment expensive to touch again, reads as much as writes, whether
the process slept or ran meanwhile.  Every process on a respawn's path (the
manager, the new worker, nginx, the client) then pays that for each page
it touches first, so the spawn figures follow this one across a day.  Each
run records it at its start and end.
"""

import mmap
import time

PAGE = 4096
PAGES = 2000
TRIES = 3


def _read(buf):
    started = time.perf_counter()
    total = 0
    for offset in range(0, PAGES * PAGE, PAGE):
        total += buf[offset]
    return (time.perf_counter() - started) / PAGES * 1e6


def firstTouchMicros(idle=1.5):
    """``{'warm': µs, 'after_idle': µs}`` per page read: at once, and after ``idle`` s
    untouched (median of a few tries; ``idle * TRIES`` seconds in all)."""
    buf = mmap.mmap(-1, PAGES * PAGE)
    try:
        for offset in range(0, PAGES * PAGE, PAGE):
            buf[offset] = 1
        warm, cold = [], []
        for _ in range(TRIES):
            _read(buf)
            warm.append(_read(buf))
            time.sleep(idle)
            cold.append(_read(buf))
    finally:
        buf.close()
    return {'warm': sorted(warm)[TRIES // 2], 'after_idle': sorted(cold)[TRIES // 2],
            'idle_s': idle}


def describe(figures):
    return (f"{figures['after_idle']:.1f} µs per 4 KB page first read after "
            f"{figures['idle_s']:g} s untouched ({figures['warm']:.2f} µs warm)")
