"""Throughput and latency through nginx with wrk: hello world and a 10 KB response.

Every server runs ``bench.apps:hello`` with 2 workers.  Server CPU per request
is the CPU time of the server's master and workers over the measured run,
divided by the requests wrk completed.
"""

from bench.load import runWrk
from bench.nginx import Front
from bench.procs import treeCpuSeconds
from bench.servers import GunicornServer, PeakServer, UwsgiServer

APP = 'bench.apps:hello'
PATHS = (('hello', '/'), ('10k', '/10k'))

METRICS = [('rps', 'req/s', '{:,.0f}'), ('p50_ms', 'p50 ms', '{:.2f}'),
           ('p99_ms', 'p99 ms', '{:.2f}'), ('cpu_us', 'server CPU µs/req', '{:.0f}'),
           ('failed', 'errors', '{:.0f}')]
TABLES = {f'throughput-{label}': {
    'title': f"Throughput via nginx, {'hello world' if label == 'hello' else '10 KB response'}"
             " (wrk -t2 -c16, 2 workers)",
    'metrics': METRICS, 'ratio': ('rps', 'req/s', True)} for label, _ in PATHS}


def variants(workdir):
    """(row name, server, keep-conn) for every configuration measured."""
    return [
        ('peak_lite FastCGI, keep-conn on', PeakServer('peak-fcgi-keep', workdir, APP), True),
        ('peak_lite FastCGI, keep-conn off', PeakServer('peak-fcgi', workdir, APP), False),
        ('peak_lite HTTP', PeakServer('peak-http', workdir, APP, gateway='HTTP'), True),
        ('gunicorn sync (proxy_pass)', GunicornServer('gunicorn', workdir, APP), True),
        ('uWSGI FastCGI', UwsgiServer('uwsgi', workdir, APP), False),
    ]


def runRound(ctx):
    results = {table: {} for table in TABLES}
    for row, server, keep in ctx.ordered(variants(ctx.workdir)):
        server.start()
        front = Front(ctx.workdir, server, keepConn=keep)
        try:
            front.start()
            for label, path in PATHS:
                runWrk(front.url + path, duration=1)            # warm up
                before = treeCpuSeconds(server.pid)
                figures = runWrk(front.url + path, duration=ctx.duration)
                cpu = treeCpuSeconds(server.pid) - before
                figures['cpu_us'] = cpu / max(1, figures['requests']) * 1e6
                figures['failed'] = figures['errors'] + figures['non2xx']
                results[f'throughput-{label}'][row] = figures
                ctx.say(f"  {row} {path}: {figures['rps']:,.0f} req/s, "
                        f"p99 {figures['p99_ms']} ms")
        finally:
            front.stop()
            server.stop()
    return results
