"""Reload under load: SIGHUP to the master while 8 clients send ~100 req/s each.

The app takes 1.5 s to import (``bench.heavyapp`` with a 20 MB cache), so a
reload that has to re-import shows it.  2 workers each.  Measured over 10 s
with the HUP at 3 s: failed requests (not 200, or a connection error), the
worst latency, whether new workers (new pids) serve afterwards, and whether
they run the new code (the app reports the version file it read at import,
rewritten just before the HUP).  peak_lite runs twice: with the default
``Reload overlap`` and with ``Reload stop`` (the stop-then-exec sequence).
gunicorn runs without ``--preload`` (with it, HUP does not load new code);
uWSGI gets ``--binary-path`` so that its re-exec finds the virtualenv.
"""

import os
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
                ('renewed', 'new workers serve (1 = yes)', '{:.0f}'),
                ('reloaded', 'new code serves (1 = yes)', '{:.0f}')],
    'ratio': ('worst_ms', 'worst latency', False)}}


def servers(workdir):
    env = dict(ENV, BENCH_VERSION_FILE=versionFile(workdir))
    return [
        ('peak_lite', PeakServer('reload-peak', workdir, APP, env=env, startTimeout=60)),
        ('peak_lite, Reload stop', PeakServer('reload-peak-stop', workdir, APP, env=env,
                                              startTimeout=60, settings={'Reload': 'stop'})),
        ('gunicorn', GunicornServer('reload-gunicorn', workdir, APP, env=env, startTimeout=60)),
        ('uWSGI', UwsgiServer('reload-uwsgi', workdir, APP, env=env, startTimeout=60)),
    ]


def versionFile(workdir):
    return os.path.join(workdir, 'reload-version')


def writeVersion(workdir, version):
    with open(versionFile(workdir), 'w') as f:
        f.write(version + '\n')


def runRound(ctx):
    rows = {}
    for row, server in ctx.ordered(servers(ctx.workdir)):
        writeVersion(ctx.workdir, 'v1')
        server.start()
        front = Front(ctx.workdir, server)
        try:
            front.start()
            get(front.port, '/')
            before = set(server.workers())
            load = Clients(front.port, '/', CLIENTS, DURATION, pause=0.01).start()
            time.sleep(HUP_AT)
            writeVersion(ctx.workdir, 'v2')
            server.reload()
            load.wait()
            after = set(waitFor(lambda: server.workers() or None, 30, f"{row}'s workers"))
            status, body = get(front.port, '/')
            rows[row] = {
                'failed': sum(1 for r in load.records if r[2] != 200),
                'worst_ms': max(r[1] for r in load.records) * 1000,
                'requests': len(load.records),
                'renewed': int(not (before & after)),
                'reloaded': int(status == 200 and body.strip().endswith(' v2'))}
            ctx.say(f"  {row}: {rows[row]}")
        finally:
            front.stop()
            server.stop()
    return {'reload': rows}
