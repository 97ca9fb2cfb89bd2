"""Reload under load: SIGHUP to the master while 8 clients send ~100 req/s each.

The app takes 1.5 s to import (``bench.heavyapp`` with a 20 MB cache), so a
reload that has to re-import shows it.  2 workers each.  Measured over 10 s
with the HUP at 3 s: failed requests (not 200, or a connection error), the
worst latency, and whether new workers (new pids) serve afterwards.
gunicorn runs without ``--preload`` (with it, HUP does not load new code);
uWSGI gets ``--binary-path`` so that its re-exec finds the virtualenv.
"""

import time

from bench.load import Clients, get
from bench.nginx import Front
from bench.procs import waitFor
from bench.servers import GunicornServer, PeakServer, UwsgiServer

APP = 'bench.heavyapp:app'
ENV = {'BENCH_CACHE_MB': '20', 'BENCH_IMPORT_S': '1.5'}
CLIENTS = 8
DURATION = 10.0
HUP_AT = 3.0

TABLES = {'reload': {
    'title': f"Reload (SIGHUP) under load: {CLIENTS} clients × ~100 req/s, 1.5 s app import",
    'metrics': [('failed', 'failed requests', '{:.0f}'),
                ('worst_ms', 'worst latency, ms', '{:,.0f}'),
                ('requests', 'requests in 10 s', '{:.0f}'),
                ('renewed', 'new workers serve (1 = yes)', '{:.0f}')],
    'ratio': ('worst_ms', 'worst latency', False)}}


def servers(workdir):
    return [
        ('peak_lite', PeakServer('reload-peak', workdir, APP, env=ENV, startTimeout=60)),
        ('gunicorn', GunicornServer('reload-gunicorn', workdir, APP, env=ENV, startTimeout=60)),
        ('uWSGI', UwsgiServer('reload-uwsgi', workdir, APP, env=ENV, startTimeout=60)),
    ]


def runRound(ctx):
    rows = {}
    for row, server in ctx.ordered(servers(ctx.workdir)):
        server.start()
        front = Front(ctx.workdir, server)
        try:
            front.start()
            get(front.port, '/')
            before = set(server.workers())
            load = Clients(front.port, '/', CLIENTS, DURATION, pause=0.01).start()
            time.sleep(HUP_AT)
            server.reload()
            load.wait()
            after = set(waitFor(lambda: server.workers() or None, 30, f"{row}'s workers"))
            rows[row] = {
                'failed': sum(1 for r in load.records if r[2] != 200),
                'worst_ms': max(r[1] for r in load.records) * 1000,
                'requests': len(load.records),
                'renewed': int(not (before & after))}
            ctx.say(f"  {row}: {rows[row]}")
        finally:
            front.stop()
            server.stop()
    return {'reload': rows}
