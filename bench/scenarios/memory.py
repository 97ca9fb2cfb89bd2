"""Memory per worker with a ~200 MB cache of gc-tracked objects.

4 workers each; the load sends 1,500 requests per worker on average (4
clients of 5 ms requests through nginx), then ``/gc?0.5`` is sent by 4 clients at once,
repeatedly, until every worker has run a full ``gc.collect()``.  Then USS
(private pages) and PSS of each process are read from /proc/PID/smaps_rollup.
A worker's USS is what one more worker costs.

peak_lite preloads and calls ``gc.freeze()`` before forking;
gunicorn runs with ``--preload``; uWSGI loads the app in the master (its
default).
"""

import re
import threading

from bench.load import Clients, get
from bench.nginx import Front
from bench.procs import BenchError, smapsRollup
from bench.servers import GunicornServer, PeakServer, UwsgiServer

APP = 'bench.heavyapp:app'
WORKERS = 4
PER_WORKER = 1500
MB = 1024 * 1024

TABLES = {'memory': {
    'title': f"Memory, heavy app (200 MB gc-tracked cache), {WORKERS} workers, "
             "after load and gc.collect() in every worker",
    'metrics': [('uss_mb', 'USS per worker MB', '{:.1f}'),
                ('pss_mb', 'PSS per worker MB', '{:.1f}'),
                ('total_pss_mb', 'total PSS MB', '{:.0f}'),
                ('min_served', 'fewest requests by a worker', '{:.0f}')],
    'ratio': ('uss_mb', 'USS per worker', False)}}


def servers(workdir):
    return [
        ('peak_lite', PeakServer('mem-peak', workdir, APP, workers=WORKERS, startTimeout=60)),
        ('gunicorn --preload', GunicornServer('mem-gunicorn', workdir, APP, workers=WORKERS,
                                              preload=True, startTimeout=60)),
        ('uWSGI', UwsgiServer('mem-uwsgi', workdir, APP, workers=WORKERS, startTimeout=60)),
    ]


def collectEverywhere(port, workers):
    """Send concurrent ``/gc`` calls until each worker pid has answered; {pid: served}."""
    seen = {}
    for _ in range(20):
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(get(port, '/gc?0.5')))
                   for _ in range(len(workers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for status, body in answers:
            found = re.search(r'pid=(\d+) served=(\d+)', body)
            if status == 200 and found:
                seen[int(found.group(1))] = int(found.group(2))
        if set(workers) <= set(seen):
            return seen
    raise BenchError(f"gc.collect() reached only workers {sorted(seen)} of {workers}")


def runRound(ctx):
    rows = {}
    for row, server in ctx.ordered(servers(ctx.workdir)):
        server.start()
        # keep-conn off: with it on, nginx sends each request down a cached
        # connection, so the worker holding it gets the request and a worker
        # without one may never see /gc.
        front = Front(ctx.workdir, server, keepConn=False)
        try:
            front.start()
            # 5 ms requests with one client per worker spread the load more
            # evenly than instant ones, which the first idle worker keeps taking.
            load = Clients(front.port, '/sleep?0.005', WORKERS, duration=120,
                           limit=PER_WORKER * WORKERS)
            load.start().wait()
            workers = server.workers()
            served = collectEverywhere(front.port, workers)
            sizes = [smapsRollup(w) for w in workers]
            master = smapsRollup(server.pid)
            rows[row] = {
                'uss_mb': sum(s['uss'] for s in sizes) / len(sizes) / MB,
                'pss_mb': sum(s['pss'] for s in sizes) / len(sizes) / MB,
                'total_pss_mb': (master['pss'] + sum(s['pss'] for s in sizes)) / MB,
                'min_served': min(served[w] for w in workers)}
            ctx.say(f"  {row}: USS/worker {rows[row]['uss_mb']:.1f} MB, "
                    f"total PSS {rows[row]['total_pss_mb']:.0f} MB")
        finally:
            front.stop()
            server.stop()
    return {'memory': rows}
