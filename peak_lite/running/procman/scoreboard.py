"""The shared-memory scoreboard: one slot per child, each written only by its child.

Layout (little-endian), also read by ``peak procman --status`` and outside tools:

    header, 64 bytes:
      0  8s  magic b'PEAKSB01'
      8  I   layout version (3)
     12  I   number of slots
     16  I   slot size in bytes (256)
     20  i   manager pid
     24  I   wake flag: 1 while the manager wants to hear when all children are busy
     28  I   reserved
     32  d   time the manager (re)started, seconds since the epoch
     40  24x reserved
    slot i at 64 + 256*i, 256 bytes:
      0  i   pid (0: free slot)
      4  B   state: 0 free, 1 starting, 2 idle, 3 busy, 4 stopping, 5 standby
      5  3x
      8  Q   requests served
     16  d   CLOCK_MONOTONIC time of the last state change (for busy: when the
             request started); system-wide on Linux, so an outside reader
             compares it with its own time.monotonic()
     24  I   child number (1, 2, ... in start order)
     28  I   the child's request limit: MaxRequests plus its own jitter (0: none)
     32  d   seconds spent on the requests served (the histogram's sum)
     40  4Q  responses by status class: 2xx, 3xx, 4xx, 5xx
     72  15Q requests by duration, one count per bucket (not cumulative): at most
             0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5,
             7.5, 10 seconds, then above 10 s (OpenTelemetry's bounds for
             http.server.request.duration)
    192  64s the current (or last) request: "METHOD target", UTF-8, NUL-padded

Layout 3 added the counters from offset 32 on; 2 ended at the request limit.
The counters are the child's own, from zero: when the manager reaps a child
it adds them to its totals before it clears the slot, so totals never go
backwards.

A child's request path (``slotstatus.SlotStatus``) writes only its own slot, with
``util.shared.store`` (see there why never ``struct.pack_into``), or compiled, one
aligned store per field (``_slotcore.c``): no lock, no system call (the times come
from the vDSO's clock).  It writes one byte to the manager's wake pipe only when
every child is busy and the manager asked for it (the wake flag), or once in its
life, when it reaches its request limit.

Every time the manager compares is monotonic: a step of the wall clock (NTP,
an operator's ``date -s``) must never make RequestTimeout or IdleTimeout fire.

A child can write any byte of the shared mapping, so nothing read from it is
trusted: a state out of range reads as UNKNOWN ('unknown' in ``--status``),
a time that is not finite as unknown too.

The file's mapping is made with mmap(2) directly and its descriptor closed at
once: CPython's ``mmap.mmap`` keeps a private dup of the descriptor, which
every child would inherit, able to ``ftruncate`` the file and kill the
manager with SIGBUS.  The file is 0600, owned by the manager's user.  With
no Semaphore file the scoreboard is a memfd sealed against shrinking and
growing, so that no holder of it can cause that SIGBUS either.

A reload's exec carries the board to the new image (``carryFd``), which maps
it read-only (``CarriedBoard``): the previous generation's counts keep
adding up there until each of its children exits.
"""

import ctypes
import fcntl
import math
import mmap
import os
import stat
import struct
import time

from peak_lite.running.procman.interfaces import ConfigError, ProcmanError
from peak_lite.util.safefile import openTrusted
from peak_lite.util.shared import store

__all__ = ['Scoreboard', 'CarriedBoard', 'STATES', 'BUCKETS', 'CODE_CLASSES', 'readScoreboard', 'openScoreboard',
           'checkSemaphore', 'slotsFor', 'clock', 'stateName', 'MAX_REQUEST_LIMIT',
           'MAX_SLOTS', 'MAX_CHILD_NUMBER']

MAGIC = b'PEAKSB01'
VERSION = 3             # 3: per-request counters; 2: times are CLOCK_MONOTONIC
HEADER = struct.Struct('<8sIIIiIId24x')
SLOT = struct.Struct('<iB3xQdI')      # the first 28 bytes; a child never writes the limit
SLOT_SIZE = 256
LIMIT = struct.Struct('<I')
LIMIT_OFFSET = 28
# OpenTelemetry's bucket bounds for http.server.request.duration, in seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
CODE_CLASSES = ('2xx', '3xx', '4xx', '5xx')
SUM = struct.Struct('<d')
SUM_OFFSET = 32
COUNT = struct.Struct('<Q')
CODES_OFFSET = 40
BUCKETS_OFFSET = 72
COUNTERS = struct.Struct(f'<d{len(CODE_CLASSES)}Q{len(BUCKETS) + 1}Q')   # from SUM_OFFSET
LINE = struct.Struct('<64s')
LINE_OFFSET = 192
WAKE = struct.Struct('<I')
PID = struct.Struct('<i')
STATE = struct.Struct('<B')
STATE_OFFSET = 4
WAKE_OFFSET = 24
FREE, STARTING, IDLE, BUSY, STOPPING, STANDBY = range(6)
UNKNOWN = 255           # what a corrupt state byte reads as
STATES = ('free', 'starting', 'idle', 'busy', 'stopping', 'standby')

# The field widths, for validating a config before anything starts:
MAX_REQUEST_LIMIT = 2 ** 32 - 1   # a slot's request limit (MaxRequests plus its jitter)
MAX_SLOTS = 2 ** 32 - 1           # the header's slot count (see slotsFor)
MAX_CHILD_NUMBER = 2 ** 32 - 1    # child numbers wrap around past this

clock = time.monotonic            # CLOCK_MONOTONIC: system-wide on Linux


def stateName(state):
    """The name of a state number; 'unknown' for anything a child should not have written."""
    return STATES[state] if 0 <= state < len(STATES) else 'unknown'


def _sane(state, changed):
    """(state, time) as read from a slot, with what cannot be trusted made UNKNOWN / NaN."""
    if not 0 <= state < len(STATES):
        state = UNKNOWN
    return state, changed if math.isfinite(changed) else math.nan


class Scoreboard:
    """The manager's view: allocates slots, reads states, clears the slots of reaped children."""

    def __init__(self, slots, path=None):
        self.slots = slots
        self.path = path
        size = HEADER.size + SLOT_SIZE * slots
        self.fd = None
        self.carried = False         # carryFd() gave it to a new image
        if path is None:
            self.fd = _sealedMemory(size)
            self.map, self._unmap = _mapShared(self.fd, size)
        else:
            self.map, self._unmap, self._inode = _fileMap(path, size)
        HEADER.pack_into(self.map, 0, MAGIC, VERSION, slots, SLOT_SIZE, os.getpid(), 0, 0,
                         time.time())
        for i in range(slots):
            self.clear(i)

    def offset(self, index):
        return HEADER.size + SLOT_SIZE * index

    def allocate(self, pid, number, limit=0):
        """Claim a free slot for a new child; return its index, or None if full."""
        for i in range(self.slots):
            if SLOT.unpack_from(self.map, self.offset(i))[0] == 0:
                store(self.map, self.offset(i), SLOT, pid, STARTING, 0, clock(),
                      number & MAX_CHILD_NUMBER)
                store(self.map, self.offset(i) + LIMIT_OFFSET, LIMIT, limit)
                return i
        return None

    def setPid(self, index, pid):
        """Record the pid of the child that will use the reserved slot ``index``."""
        # Only the pid field: the child may already be writing the rest of its slot.
        store(self.map, self.offset(index), PID, pid)

    def clear(self, index):
        start = self.offset(index)
        self.map[start + 4:start + SLOT_SIZE] = bytes(SLOT_SIZE - 4)
        PID.pack_into(self.map, start, 0)       # the pid last: a free slot is all zero

    def markStopping(self, index):
        """Mark a child asked to stop.  Only the state byte: the child owns the rest."""
        store(self.map, self.offset(index) + STATE_OFFSET, STATE, STOPPING)

    def read(self, index):
        """(pid, state, requests, lastChange, number) of slot ``index``.

        A state byte out of range reads as UNKNOWN and a time that is not
        finite as NaN (which no timeout comparison ever fires on).
        """
        pid, state, requests, changed, number = SLOT.unpack_from(self.map, self.offset(index))
        state, changed = _sane(state, changed)
        return pid, state, requests, changed, number

    def counters(self, index):
        """(duration sum, (2xx, 3xx, 4xx, 5xx), per-bucket counts) of slot ``index``.

        A sum that is not finite or is negative (a child wrote nonsense) reads as 0.
        """
        values = COUNTERS.unpack_from(self.map, self.offset(index) + SUM_OFFSET)
        total = values[0] if math.isfinite(values[0]) and values[0] >= 0 else 0.0
        codes = len(CODE_CLASSES)
        return total, values[1:1 + codes], values[1 + codes:]

    def requestLine(self, index):
        """The slot's current (or last) request line, as text."""
        raw = LINE.unpack_from(self.map, self.offset(index) + LINE_OFFSET)[0]
        return raw.rstrip(b'\0').decode('utf-8', 'replace')

    def occupied(self):
        """The slot dicts of ``readScoreboard`` for this board's occupied slots."""
        return _slotDicts(self.map, self.slots)

    def counts(self):
        """{state name: count} over the occupied slots, 'unknown' included."""
        result = dict.fromkeys(STATES[1:] + ('unknown',), 0)
        for i in range(self.slots):
            pid, state = SLOT.unpack_from(self.map, self.offset(i))[:2]
            if pid:
                # A pid over a free state (a hostile write) is unknown, never fatal.
                result[stateName(state) if state != FREE else 'unknown'] += 1
        return result

    def armWake(self, wanted=True):
        store(self.map, WAKE_OFFSET, WAKE, 1 if wanted else 0)

    def slotOf(self, pid):
        """The index of the slot ``pid`` holds, or None."""
        for i in range(self.slots):
            if SLOT.unpack_from(self.map, self.offset(i))[0] == pid:
                return i
        return None

    def carryFd(self):
        """A descriptor of this board for a reload's exec (inheritable), or None.
        The Semaphore file is opened again by its path, which must still be the
        file mapped (it is unlinked right after, for the new image's own)."""
        if self.path is None:
            fd = os.dup(self.fd)
        else:
            try:
                fd = openTrusted(self.path, os.O_RDONLY, 0, 'Semaphore', ProcmanError)
            except (OSError, ProcmanError):
                return None
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != self._inode:
                os.close(fd)
                return None
        os.set_inheritable(fd, True)
        self.carried = True
        return fd

    def close(self):
        self.map.release()
        self._unmap()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class CarriedBoard(Scoreboard):
    """The previous image's scoreboard, carried across a reload's exec: read-only.
    ``CarriedBoard(fd)`` maps it and closes ``fd``; ProcmanError if it is no board."""

    def __init__(self, fd):
        self.path = self.fd = None
        try:
            size = os.fstat(fd).st_size
            if size < HEADER.size:
                raise ProcmanError(f"a carried scoreboard of {size} bytes is too small")
            self.map, self._unmap = _mapShared(fd, size, writable=False)
        finally:
            os.close(fd)
        magic, version, slots, slotSize = HEADER.unpack_from(self.map, 0)[:4]
        if (magic != MAGIC or version != VERSION or slotSize != SLOT_SIZE
                or HEADER.size + slots * SLOT_SIZE > size):
            self.close()
            raise ProcmanError("the carried scoreboard is not one of this layout")
        self.slots = slots


def slotsFor(cfg):
    """How many slots a config's pool needs: live children plus those still stopping,
    and the standbys."""
    return max(2 * cfg.MaxProcesses, cfg.MaxProcesses + 4) + cfg.Standby


def semaphoreRule(cfg):
    """The first ``<BusyStarter>`` rule naming a Semaphore file, or None."""
    return next((r for r in cfg.busyStarters if r.Semaphore), None)


def checkSemaphore(cfg):
    """Raise ConfigError if the config's Semaphore path cannot hold a scoreboard.

    Run before anything is started (and by ``--check``); opening the file
    later refuses a symlink raced in meanwhile all the same.
    """
    rule = semaphoreRule(cfg)
    if rule is None:
        return
    try:
        st = os.lstat(rule.Semaphore)
    except FileNotFoundError:
        return
    except OSError as e:
        raise _semaphoreError(cfg, rule, f"cannot inspect: {e.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise _semaphoreError(cfg, rule, "is a symlink; refusing to follow it: remove it "
                                         "or choose another path")
    try:
        os.close(openTrusted(rule.Semaphore, os.O_RDONLY, 0, 'Semaphore', ProcmanError))
    except ProcmanError as e:
        raise _semaphoreError(cfg, rule, str(e)) from None


def openScoreboard(cfg):
    """The manager's Scoreboard for ``cfg``: in its Semaphore file, or anonymous."""
    rule = semaphoreRule(cfg)
    if rule is None:
        return Scoreboard(slotsFor(cfg))
    try:
        return Scoreboard(slotsFor(cfg), rule.Semaphore)
    except ProcmanError as e:
        raise _semaphoreError(cfg, rule, str(e)) from None


def _semaphoreError(cfg, rule, message):
    if message.startswith(f"Semaphore {rule.Semaphore}: "):
        message = message[len(f"Semaphore {rule.Semaphore}: "):]
    return ConfigError(f"Semaphore {rule.Semaphore}: {message}", cfg.filename,
                       rule.lineno or 1)


def _fileMap(path, size):
    """(writable memoryview of the file's shared mapping, unmap function, (dev, inode));
    no fd kept."""
    fd = openTrusted(path, os.O_RDWR | os.O_CREAT, 0o600, 'Semaphore', ProcmanError)
    try:
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, size)
        st = os.fstat(fd)
        return _mapShared(fd, size) + ((st.st_dev, st.st_ino),)
    finally:
        os.close(fd)


def _sealedMemory(size):
    """A memfd of ``size`` bytes that nobody can shrink or grow (close-on-exec)."""
    fd = os.memfd_create('peak-procman-scoreboard', os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, size)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                    fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    except OSError:
        os.close(fd)
        raise
    return fd


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long)
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)


def _mapShared(fd, size, writable=True):
    prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
    address = _libc.mmap(None, size, prot, mmap.MAP_SHARED, fd, 0)
    if address in (None, ctypes.c_void_p(-1).value):
        err = ctypes.get_errno()
        raise ProcmanError(f"cannot map the scoreboard: {os.strerror(err)}")
    view = memoryview((ctypes.c_char * size).from_address(address)).cast('B')
    if not writable:
        view = view.toreadonly()
    return view, lambda: _libc.munmap(address, size)


def readScoreboard(path):
    """Read a scoreboard file: (header dict, list of slot dicts for occupied slots)."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError:
        raise
    except OSError as e:
        raise ProcmanError(f"{path}: cannot read the scoreboard: {e.strerror}") from None
    if len(data) < HEADER.size or data[:8] != MAGIC:
        raise ProcmanError(f"{path}: not a procman scoreboard (bad magic)")
    magic, version, slots, slotSize, managerPid, wake, _, started = HEADER.unpack_from(data, 0)
    if version != VERSION or slotSize != SLOT_SIZE:
        raise ProcmanError(f"{path}: scoreboard layout version {version} is not supported")
    if len(data) < HEADER.size + slots * SLOT_SIZE:
        raise ProcmanError(f"{path}: scoreboard truncated: {len(data)} bytes for {slots} slots")
    return dict(managerPid=managerPid, slots=slots, started=started), _slotDicts(data, slots)


def _slotDicts(data, slots):
    """One dict per occupied slot of ``data`` (a scoreboard's bytes or mapping)."""
    result = []
    for i in range(slots):
        offset = HEADER.size + SLOT_SIZE * i
        pid, state, requests, changed, number = SLOT.unpack_from(data, offset)
        if pid:
            limit = LIMIT.unpack_from(data, offset + LIMIT_OFFSET)[0]
            line = LINE.unpack_from(data, offset + LINE_OFFSET)[0]
            result.append(dict(slot=i, pid=pid, state=stateName(state), requests=requests,
                               lastChange=changed if math.isfinite(changed) else None,
                               number=number, limit=limit,
                               request=line.rstrip(b'\0').decode('utf-8', 'replace')))
    return result
