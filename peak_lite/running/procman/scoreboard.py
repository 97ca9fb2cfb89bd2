"""The shared-memory scoreboard: one slot per child, each written only by its child.

Layout (little-endian), also read by ``peak procman --status`` and outside tools:

    header, 64 bytes:
      0  8s  magic b'PEAKSB01'
      8  I   layout version (1)
     12  I   number of slots
     16  I   slot size in bytes (32)
     20  i   manager pid
     24  I   wake flag: 1 while the manager wants to hear when all children are busy
     28  I   reserved
     32  d   time the manager (re)started, seconds since the epoch
     40  24x reserved
    slot i at 64 + 32*i, 32 bytes:
      0  i   pid (0: free slot)
      4  B   state: 0 free, 1 starting, 2 idle, 3 busy, 4 stopping
      5  3x
      8  Q   requests served
     16  d   time of the last state change (for busy: when the request started)
     24  I   child number (1, 2, ... in start order)
     28  I   the child's request limit: MaxRequests plus its own jitter (0: none)

A child's request path writes only its own slot with ``struct.pack_into``:
no system call.  It writes one byte to the manager's wake pipe only when
every child is busy and the manager asked for it (the wake flag), or once in
its life, when it reaches its request limit.
"""

import contextlib
import errno
import mmap
import os
import stat
import struct
import time

from zope.interface import implementer

from peak_lite.running.interfaces import IWorkerStatus
from peak_lite.running.procman.interfaces import ConfigError, ProcmanError

__all__ = ['Scoreboard', 'SlotStatus', 'STATES', 'readScoreboard', 'openScoreboard',
           'checkSemaphore', 'slotsFor']

MAGIC = b'PEAKSB01'
VERSION = 1
HEADER = struct.Struct('<8sIIIiIId24x')
SLOT = struct.Struct('<iB3xQdI')      # the first 28 bytes; a child never writes the limit
SLOT_SIZE = 32
LIMIT = struct.Struct('<I')
LIMIT_OFFSET = 28
WAKE = struct.Struct('<I')
PID = struct.Struct('<i')
STATE = struct.Struct('<B')
STATE_OFFSET = 4
WAKE_OFFSET = 24
FREE, STARTING, IDLE, BUSY, STOPPING = range(5)
STATES = ('free', 'starting', 'idle', 'busy', 'stopping')


class Scoreboard:
    """The manager's view: allocates slots, reads states, clears the slots of reaped children."""

    def __init__(self, slots, path=None):
        self.slots = slots
        self.path = path
        size = HEADER.size + SLOT_SIZE * slots
        if path is None:
            self.map = mmap.mmap(-1, size, mmap.MAP_SHARED)
        else:
            self.map = _fileMap(path, size)
        HEADER.pack_into(self.map, 0, MAGIC, VERSION, slots, SLOT_SIZE, os.getpid(), 0, 0,
                         time.time())
        for i in range(slots):
            self.clear(i)
        self.wakeFd = None

    def offset(self, index):
        return HEADER.size + SLOT_SIZE * index

    def allocate(self, pid, number, limit=0):
        """Claim a free slot for a new child; return its index, or None if full."""
        for i in range(self.slots):
            if SLOT.unpack_from(self.map, self.offset(i))[0] == 0:
                SLOT.pack_into(self.map, self.offset(i), pid, STARTING, 0, time.time(), number)
                LIMIT.pack_into(self.map, self.offset(i) + LIMIT_OFFSET, limit)
                return i
        return None

    def setPid(self, index, pid):
        """Record the pid of the child that will use the reserved slot ``index``."""
        # Only the pid field: the child may already be writing the rest of its slot.
        PID.pack_into(self.map, self.offset(index), pid)

    def clear(self, index):
        SLOT.pack_into(self.map, self.offset(index), 0, FREE, 0, 0.0, 0)
        LIMIT.pack_into(self.map, self.offset(index) + LIMIT_OFFSET, 0)

    def markStopping(self, index):
        """Mark a child asked to stop.  Only the state byte: the child owns the rest."""
        STATE.pack_into(self.map, self.offset(index) + STATE_OFFSET, STOPPING)

    def read(self, index):
        """(pid, state, requests, lastChange, number) of slot ``index``."""
        return SLOT.unpack_from(self.map, self.offset(index))

    def counts(self):
        """{state name: count} over the occupied slots."""
        result = dict.fromkeys(STATES[1:], 0)
        for i in range(self.slots):
            pid, state = SLOT.unpack_from(self.map, self.offset(i))[:2]
            if pid:
                result[STATES[state]] += 1
        return result

    def armWake(self, wanted=True):
        WAKE.pack_into(self.map, WAKE_OFFSET, 1 if wanted else 0)

    def close(self):
        self.map.close()


def slotsFor(cfg):
    """How many slots a config's pool needs: live children plus those still stopping."""
    return max(2 * cfg.MaxProcesses, cfg.MaxProcesses + 4)


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
    if not stat.S_ISREG(st.st_mode):
        raise _semaphoreError(cfg, rule, "is not a regular file: remove it or choose "
                                         "another path")


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
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ProcmanError(f"Semaphore {path}: is a symlink; refusing to follow it: "
                               f"remove it or choose another path") from None
        raise ProcmanError(f"Semaphore {path}: cannot open: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ProcmanError(f"Semaphore {path}: is not a regular file: remove it or "
                               f"choose another path")
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, size)
        return mmap.mmap(fd, size, mmap.MAP_SHARED)
    finally:
        os.close(fd)


@implementer(IWorkerStatus)
class SlotStatus:
    """A child's IWorkerStatus: its own scoreboard slot.  See IWorkerStatus."""

    stopping = False

    def __init__(self, board, index, wakeFd=None):
        self.map = board.map
        self.offset = board.offset(index)
        self.slots = board.slots
        self.wakeFd = wakeFd
        self.pid = os.getpid()
        pid, _, self.requests, _, self.number = SLOT.unpack_from(self.map, self.offset)
        self.limit = LIMIT.unpack_from(self.map, self.offset + LIMIT_OFFSET)[0]
        SLOT.pack_into(self.map, self.offset, self.pid, IDLE, self.requests, time.time(),
                       self.number)

    @contextlib.contextmanager
    def busy(self):
        if STATE.unpack_from(self.map, self.offset + STATE_OFFSET)[0] == STOPPING:
            self.stopping = True     # the manager asked this child to stop
        SLOT.pack_into(self.map, self.offset, self.pid, BUSY, self.requests, time.time(),
                       self.number)
        if self.wakeFd is not None and WAKE.unpack_from(self.map, WAKE_OFFSET)[0]:
            self._wakeIfAllBusy()
        try:
            yield self
        finally:
            self.requests += 1
            if STATE.unpack_from(self.map, self.offset + STATE_OFFSET)[0] == STOPPING:
                self.stopping = True
            SLOT.pack_into(self.map, self.offset, self.pid,
                           STOPPING if self.stopping else IDLE, self.requests, time.time(),
                           self.number)
            if self.requests == self.limit:
                self._wake()         # time to recycle: once in this child's life

    def _wakeIfAllBusy(self):
        for i in range(self.slots):
            pid, state = SLOT.unpack_from(self.map, HEADER.size + SLOT_SIZE * i)[:2]
            if pid and state in (STARTING, IDLE):
                return
        WAKE.pack_into(self.map, WAKE_OFFSET, 0)
        self._wake()

    def _wake(self):
        if self.wakeFd is None:
            return
        try:
            os.write(self.wakeFd, b'!')
        except (BlockingIOError, BrokenPipeError):
            pass

    def markStopping(self):
        self.stopping = True
        pid, state, requests, changed, number = SLOT.unpack_from(self.map, self.offset)
        if state != BUSY:
            SLOT.pack_into(self.map, self.offset, pid, STOPPING, requests, time.time(), number)


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
    result = []
    for i in range(slots):
        offset = HEADER.size + SLOT_SIZE * i
        pid, state, requests, changed, number = SLOT.unpack_from(data, offset)
        if pid:
            limit = LIMIT.unpack_from(data, offset + LIMIT_OFFSET)[0]
            result.append(dict(slot=i, pid=pid, state=STATES[state], requests=requests,
                               lastChange=changed, number=number, limit=limit))
    return dict(managerPid=managerPid, slots=slots, started=started), result
