"""Manager idle cost: wakeups per second of the idle master over 10 s.

All three run side by side, idle, with 2 workers of ``bench.apps:hello``
each; a wakeup is a voluntary context switch (the process slept and was
woken: a timer, a signal, a pipe).
"""

import time

from bench.procs import contextSwitches
from bench.servers import GunicornServer, PeakServer, UwsgiServer

APP = 'bench.apps:hello'
WINDOW = 10.0
SETTLE = 2.0

TABLES = {'idle': {
    'title': f"Idle master: wakeups per second over {WINDOW:g} s (2 idle workers)",
    'metrics': [('master_wakeups', 'master wakeups/s', '{:.2f}'),
                ('worker_wakeups', 'wakeups/s per worker', '{:.2f}')],
    'ratio': ('master_wakeups', 'master wakeups/s', False)}}


def runRound(ctx):
    servers = [('peak_lite', PeakServer('idle-peak', ctx.workdir, APP)),
               ('gunicorn', GunicornServer('idle-gunicorn', ctx.workdir, APP)),
               ('uWSGI', UwsgiServer('idle-uwsgi', ctx.workdir, APP))]
    rows = {}
    try:
        for _, server in servers:
            server.start()
        time.sleep(SETTLE)          # let start-up timers (first ticks, pacing) pass
        before = {name: (contextSwitches(s.pid)[0],
                         {w: contextSwitches(w)[0] for w in s.workers()})
                  for name, s in servers}
        time.sleep(WINDOW)
        for name, server in servers:
            master0, workers0 = before[name]
            workers = [contextSwitches(w)[0] - n for w, n in workers0.items()]
            rows[name] = {
                'master_wakeups': (contextSwitches(server.pid)[0] - master0) / WINDOW,
                'worker_wakeups': sum(workers) / max(1, len(workers)) / WINDOW}
            ctx.say(f"  {name}: master {rows[name]['master_wakeups']:.2f}/s")
    finally:
        for _, server in servers:
            server.stop()
    return {'idle': rows}
