"""What the access log costs: ``python -m bench.accesslog [--before TREE] [--tree TREE] [--rounds N] [--duration S]``.

peak_lite FastCGI through nginx (keep-conn on, hello world, ``wrk -t2 -c16``,
2 workers), in alternating rounds:

- ``AccessLog`` off, this tree (or the tree given with ``--tree``: the commit
  that added the access log, to isolate its cost from later changes);
- ``AccessLog`` off, the tree given with ``--before`` (a checkout of the code
  before the access log existed), when given;
- ``AccessLog`` on (combined format, to a file).

Prints the median req/s, p99 and server CPU per request of each.  Off must
match the tree without the feature within the run-to-run noise.
"""

import argparse
import os
import statistics
import tempfile

from bench.load import runWrk
from bench.nginx import Front
from bench.procs import treeCpuSeconds
from bench.servers import ROOT, PeakServer

APP = 'bench.apps:hello'


def variants(workdir, before, tree=None):
    found = [('AccessLog off', PeakServer('off', workdir, APP,
                                          env={'PYTHONPATH': tree} if tree else None))]
    if before:
        found.append(('AccessLog off, before the feature',
                      PeakServer('before', workdir, APP, env={'PYTHONPATH': before})))
    found.append(('AccessLog on (combined, to a file)',
                  PeakServer('on', workdir, APP,
                             settings={'AccessLog': os.path.join(workdir, 'access_log')})))
    return found


def measure(server, duration):
    server.start()
    front = Front(os.path.dirname(server.dir), server, keepConn=True)
    try:
        front.start()
        runWrk(front.url + '/', duration=1)            # warm up
        before = treeCpuSeconds(server.pid)
        figures = runWrk(front.url + '/', duration=duration)
        figures['cpu_us'] = (treeCpuSeconds(server.pid) - before) / max(
            1, figures['requests']) * 1e6
        return figures
    finally:
        front.stop()
        server.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--before', help="a tree of the code without the access log")
    parser.add_argument('--tree', help="the tree to run with the access log off (default: this one)")
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--duration', type=int, default=5)
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix='bench-accesslog-') as workdir:
        for n in range(args.rounds):
            rows = variants(workdir, os.path.abspath(args.before) if args.before else None,
                            os.path.abspath(args.tree) if args.tree else None)
            for name, server in (rows if n % 2 == 0 else rows[::-1]):
                figures = measure(server, args.duration)
                results.setdefault(name, []).append(figures)
                print(f"round {n + 1}: {name}: {figures['rps']:,.0f} req/s, p99 "
                      f"{figures['p99_ms']:.2f} ms, {figures['cpu_us']:.0f} µs CPU/req",
                      flush=True)
    print(f"\nmedians of {args.rounds} rounds ({ROOT}):")
    for name, runs in results.items():
        print(f"  {name}: {statistics.median(r['rps'] for r in runs):,.0f} req/s, p99 "
              f"{statistics.median(r['p99_ms'] for r in runs):.2f} ms, "
              f"{statistics.median(r['cpu_us'] for r in runs):.0f} µs CPU/req")


if __name__ == '__main__':
    main()
