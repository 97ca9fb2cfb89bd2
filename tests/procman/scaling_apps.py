"""WSGI apps and helpers for procman's scaling tests."""

import os
import struct
import threading
import time

from tests.support.procs import childrenByScan, waitFor

HEADER = struct.Struct('<8sIIIiIId24x')     # the documented layout, written out again here
SLOT = struct.Struct('<iB3xQdII')
STATES = ('free', 'starting', 'idle', 'busy', 'stopping', 'standby')


def app(environ, start_response):
    """``/`` answers the pid; ``/sleep?S`` sleeps S seconds; ``/hang`` never answers."""
    path, _, query = environ.get('PATH_INFO', '').partition('?')   # '/sleep?2' or QUERY_STRING
    if path == '/sleep':
        time.sleep(float(query or environ.get('QUERY_STRING') or 1))
    elif path == '/hang':
        threading.Event().wait()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [f"pid={os.getpid()}\n".encode()]


def pidOf(response):
    assert response.status == 200, response
    return int(response.body.decode().strip().split('=')[1])


def readBoard(path):
    """The scoreboard file parsed from the documented layout: (header, {pid: slot})."""
    with open(path, 'rb') as f:
        data = f.read()
    magic, version, nslots, size, manager, wake, _, started = HEADER.unpack_from(data, 0)
    slots = {}
    for i in range(nslots):
        pid, state, requests, changed, number, limit = SLOT.unpack_from(data, 64 + size * i)
        if pid > 0:
            slots[pid] = dict(state=STATES[state], requests=requests, changed=changed,
                              number=number, limit=limit)
    return dict(magic=magic, version=version, slots=nslots, slotSize=size, manager=manager,
                wake=wake, started=started), slots


def waitState(pm, pid, state, timeout=10.0):
    return waitFor(lambda: readBoard(pm.scoreboard)[1].get(pid, {}).get('state') == state,
                    timeout, message=f"child {pid} {state} in the scoreboard")


class Sampler:
    """Samples the manager's child count every few milliseconds, in a thread.

    A count lower than the last one is taken again by a scan of /proc
    (childrenByScan): the cheap look the kernel's ``children`` lists give can
    miss a live child while another is reaped, which a recycling pool does
    all the time.
    """

    def __init__(self, pm, interval=0.005):
        self.pm = pm
        self.interval = interval
        self.samples = []            # (monotonic time, count)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        last = 0
        while not self.done.is_set():
            count = len(self.pm.children())
            if count < last:
                count = len(childrenByScan(self.pm.pid))
            self.samples.append((time.monotonic(), count))
            last = count
            self.done.wait(self.interval)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(10)

    def counts(self):
        return [n for _, n in self.samples]


def pidGet(pm, path):
    """A tests.support.load sender: ``path`` over FastCGI; the value is the answering
    child's pid, and an answer other than 200 fails with an AssertionError."""
    def send(requestId):
        return True, pidOf(pm.request(path, timeout=30))
    return send
