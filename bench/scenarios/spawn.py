"""Spawn latency with a heavy app (~1.5 s import, ~200 MB cache).

- **SIGKILLed worker**: one worker; it is SIGKILLed and a request is sent at
  once through nginx.  The request waits in the socket's backlog and is
  answered by the replacement: the time from the kill to that answer is the
  time from the new child's start to its first served request (plus one
  request).  The answer names the pid, which must be a new one.
- **SIGKILLed young worker**: the same, at once on the replacement that has
  just answered (younger than peak_lite's ``StartInterval`` of 0.5 s).
- **add a worker**: the one worker is kept busy (``/sleep?3``), the server is
  asked for one more (SIGTTIN), and a request is sent: the new worker answers
  it.  uWSGI has no such signal, so it has no figure here.

peak_lite forks from the preloaded manager, its heap in huge pages
(``HugePages on``, the default); a second row keeps one standby child
(``Standby 1``), which a repair or SIGTTIN wakes instead of forking, and a
third turns huge pages off.  gunicorn runs without ``--preload``; uWSGI with
``--lazy-apps`` (each worker imports the app).
"""

import os
import signal
import threading
import time

from bench.load import get
from bench.nginx import Front
from bench.procs import BenchError
from bench.servers import GunicornServer, PeakServer, UwsgiServer

APP = 'bench.heavyapp:app'
KILLS = 3
# A child that dies within 1 s of its start counts as a crash for peak_lite's
# backoff, and uWSGI throttles "respawning too fast": space the kills out.
SPACING = 1.5

TABLES = {'spawn': {
    'title': "Spawn latency, heavy app (1.5 s import, 200 MB cache): new child → first answer",
    'metrics': [('kill_ms', 'SIGKILLed worker → replacement serves, ms', '{:,.0f}'),
                ('young_kill_ms', 'the same, worker just started, ms', '{:,.0f}'),
                ('add_ms', '"add a worker" (SIGTTIN) → it serves, ms', '{:,.0f}')],
    'ratio': ('kill_ms', 'after SIGKILL', False)}}


def _peak(name, workdir, **settings):
    return PeakServer(name, workdir, APP, workers=1, startTimeout=60,
                      settings={'MaxProcesses': 2, 'IdleTimeout': 600, **settings})


def servers(workdir):
    return [
        ('peak_lite (preloaded fork)', _peak('spawn-peak', workdir), True),
        ('peak_lite, Standby 1', _peak('spawn-peak-standby', workdir, Standby=1), True),
        ('peak_lite, HugePages off', _peak('spawn-peak-4k', workdir, HugePages='off'), True),
        ('gunicorn, no preload', GunicornServer('spawn-gunicorn', workdir, APP, workers=1,
                                                startTimeout=60), True),
        ('uWSGI lazy-apps', UwsgiServer('spawn-uwsgi', workdir, APP, workers=1, lazy=True,
                                        startTimeout=60), False),
    ]


def pidOf(port, path='/'):
    status, body = get(port, path, timeout=60)
    if status != 200:
        raise BenchError(f"GET {path} answered {status}: {body[:200]}")
    return int(body.split()[0])


def afterKill(server, port):
    old = pidOf(port)
    t0 = time.monotonic()
    os.kill(old, signal.SIGKILL)
    new = pidOf(port)
    elapsed = time.monotonic() - t0
    if new == old:
        raise BenchError(f"{server.name}: the killed worker {old} answered")
    return elapsed * 1000


def afterAdd(server, port):
    busy = threading.Thread(target=get, args=(port, '/sleep?3'), daemon=True)
    busy.start()
    # The worker takes the sleeping request within milliseconds; 0.2 s is ample
    # and well inside its 3 s.
    time.sleep(0.2)
    t0 = time.monotonic()
    os.kill(server.pid, signal.SIGTTIN)
    pidOf(port)
    elapsed = time.monotonic() - t0
    busy.join(10)
    return elapsed * 1000


def runRound(ctx):
    rows = {}
    for row, server, canAdd in ctx.ordered(servers(ctx.workdir)):
        server.start()
        front = Front(ctx.workdir, server)
        try:
            front.start()
            pidOf(front.port)
            kills = []
            for _ in range(KILLS):
                time.sleep(SPACING)
                kills.append(afterKill(server, front.port))
            young = afterKill(server, front.port)    # the replacement, just started
            kills.sort()
            rows[row] = {'kill_ms': kills[len(kills) // 2], 'young_kill_ms': young}
            if canAdd:
                time.sleep(SPACING)
                rows[row]['add_ms'] = afterAdd(server, front.port)
            ctx.say(f"  {row}: {rows[row]}")
        finally:
            front.stop()
            server.stop()
    return {'spawn': rows}
