"""Scale-up reaction: a step from 0 to 16 concurrent clients of 100 ms requests.

The pool starts at 1 worker with room for 4.  16 clients start at once, each
sending ``/sleep?0.1`` back to back for 12 s.  Measured: the time until 4
workers run (the pool is polled every 10 ms), and the p99 latency of the
requests started in the first 10 s.  peak_lite is measured with nginx's
``fastcgi_keep_conn`` on and off (uWSGI closes after every request anyway).  peak_lite runs with its default
StartInterval (0.5 s) and BusyStarter; uWSGI with ``cheaper`` and the spare
algorithm.  gunicorn, which cannot scale, runs 4 fixed workers as a
reference for the p99 a full pool gives.
"""

import time

from bench.load import Clients, percentile
from bench.nginx import Front
from bench.servers import GunicornServer, PeakServer, UwsgiServer

APP = 'bench.apps:hello'
CLIENTS = 16
MAXIMUM = 4
DURATION = 12.0
WINDOW = 10.0

TABLES = {'scaleup': {
    'title': f"Scale-up: 0 → {CLIENTS} clients of 100 ms requests, 1 → {MAXIMUM} workers",
    'metrics': [('full_s', f'time to {MAXIMUM} workers, s', '{:.2f}'),
                ('most', f'most workers in {DURATION:g} s', '{:.0f}'),
                ('p99_ms', f'p99 over first {WINDOW:g} s, ms', '{:,.0f}'),
                ('rps', 'req/s', '{:.0f}'),
                ('failed', 'failed', '{:.0f}')],
    'ratio': ('p99_ms', 'p99', False)}}


def servers(workdir):
    settings = {'MaxProcesses': MAXIMUM, 'StartInterval': '0.5', 'IdleTimeout': 600}
    return [
        ('peak_lite, keep-conn on', PeakServer(
            'scale-peak-keep', workdir, APP, workers=1, settings=settings), True),
        ('peak_lite, keep-conn off', PeakServer(
            'scale-peak', workdir, APP, workers=1, settings=settings), False),
        ('uWSGI cheaper (spare)', UwsgiServer('scale-uwsgi', workdir, APP, workers=MAXIMUM,
                                              cheaper=1), False),
        (f'gunicorn, {MAXIMUM} fixed workers', GunicornServer(
            'scale-gunicorn', workdir, APP, workers=MAXIMUM), True),
    ]


def runRound(ctx):
    rows = {}
    for row, server, keep in ctx.ordered(servers(ctx.workdir)):
        server.start()
        front = Front(ctx.workdir, server, keepConn=keep)
        try:
            front.start()
            load = Clients(front.port, '/sleep?0.1', CLIENTS, DURATION).start()
            full, most = None, 0
            while time.monotonic() < load.deadline:
                running = len(server.workers())
                most = max(most, running)
                if full is None and running >= MAXIMUM:
                    full = time.monotonic() - load.t0
                time.sleep(0.01)
            load.wait()
            early = [lat for start, lat, status in load.records if start < WINDOW]
            rows[row] = {
                'full_s': full if full is not None else float('nan'),
                'most': most,
                'p99_ms': percentile(early, 99) * 1000,
                'rps': len(load.records) / DURATION,
                'failed': sum(1 for r in load.records if r[2] != 200)}
            ctx.say(f"  {row}: {rows[row]}")
        finally:
            front.stop()
            server.stop()
    return {'scaleup': rows}
