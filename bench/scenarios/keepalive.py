"""Kept-alive upstream connections and a slow page: does a request wait behind a busy worker?

2 workers each.  First a burst (16 clients of a 50 ms page for 2 s) makes
nginx open and keep connections to both workers, as real traffic does; then
2 closed-loop clients request a 0.2 s page for the round's duration.  With 2
workers nothing needs to wait: every request should take 0.2 s.  Measured:
requests served, the share that took over 0.35 s (waited behind another
request), the median and the worst latency.  peak_lite with FastCGI
keep-conn and with HTTP upstream keep-alive; uWSGI, which closes its
FastCGI connection after every request, as the reference.
"""

from bench.load import Clients, percentile
from bench.nginx import Front
from bench.servers import PeakServer, UwsgiServer

APP = 'bench.apps:hello'
PAGE = '/sleep?0.2'
SLOW = 0.35

TABLES = {'keepalive': {
    'title': "Kept-alive connections, 2 workers, 2 clients of a 0.2 s page",
    'metrics': [('requests', 'requests', '{:.0f}'),
                ('waited_pct', f'% over {SLOW:g} s', '{:.1f}'),
                ('p50_ms', 'p50 ms', '{:.0f}'),
                ('worst_ms', 'worst ms', '{:.0f}'),
                ('failed', 'failed', '{:.0f}')],
    'ratio': ('requests', 'requests', True)}}


def servers(workdir):
    return [
        ('peak_lite FastCGI, keep-conn on', PeakServer('ka-peak-fcgi', workdir, APP), True),
        ('peak_lite HTTP', PeakServer('ka-peak-http', workdir, APP, gateway='HTTP'), True),
        ('uWSGI FastCGI', UwsgiServer('ka-uwsgi', workdir, APP), False),
    ]


def runRound(ctx):
    rows = {}
    for row, server, keep in ctx.ordered(servers(ctx.workdir)):
        server.start()
        front = Front(ctx.workdir, server, keepConn=keep)
        try:
            front.start()
            Clients(front.port, '/sleep?0.05', 16, 2.0).start().wait()
            load = Clients(front.port, PAGE, 2, ctx.duration).start().wait()
            latencies = [lat for _start, lat, _status in load.records]
            rows[row] = {
                'requests': len(load.records),
                'waited_pct': 100.0 * sum(1 for t in latencies if t > SLOW)
                / max(1, len(latencies)),
                'p50_ms': (percentile(latencies, 50) or 0) * 1000,
                'worst_ms': max(latencies, default=0) * 1000,
                'failed': sum(1 for r in load.records if r[2] != 200)}
            ctx.say(f"  {row}: {rows[row]}")
        finally:
            front.stop()
            server.stop()
    return {'keepalive': rows}
