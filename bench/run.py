"""Run the benchmarks: ``python -m bench.run [--only NAME,...] [--rounds N] [--duration S]``.

Installs the peers (gunicorn, pyuwsgi) into ``.bench-venv/`` on first use,
checks that nginx and wrk are installed, runs each selected benchmark for N
rounds (alternating the order of the servers between rounds), and writes
``bench/results/results-TIMESTAMP.{json,md}`` plus ``latest.{json,md}``.
"""

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

from bench import machine, report
from bench.load import wrkBinary
from bench.nginx import nginxBinary
from bench.procs import BenchError
from bench.scenarios import idle, keepalive, memory, reload, scaleup, spawn, throughput
from bench.servers import PEER_VENV, ROOT

SCENARIOS = {'throughput': throughput, 'spawn': spawn, 'memory': memory,
             'scaleup': scaleup, 'reload': reload, 'idle': idle, 'keepalive': keepalive}
PEERS = ('gunicorn==27.0.1', 'pyuwsgi==2.0.30.post1')
RESULTS = os.path.join(ROOT, 'bench', 'results')


class Context:
    """What a scenario's round needs: where to write, how long, and the server order."""

    def __init__(self, workdir, duration, roundNumber):
        self.workdir = workdir
        self.duration = duration
        self.round = roundNumber

    def ordered(self, items):
        """``items`` in order on even rounds, reversed on odd ones."""
        return list(items) if self.round % 2 == 0 else list(reversed(items))

    def say(self, text):
        print(text, flush=True)


def ensurePeers():
    """Create .bench-venv with the pinned peers unless it already has them."""
    wanted = [os.path.join(PEER_VENV, 'bin', name) for name in ('gunicorn', 'uwsgi')]
    if all(os.path.exists(p) for p in wanted):
        return
    print(f"installing {', '.join(PEERS)} into {PEER_VENV}", flush=True)
    base = getattr(sys, '_base_executable', sys.executable)
    subprocess.run([base, '-m', 'venv', PEER_VENV], check=True)
    subprocess.run([os.path.join(PEER_VENV, 'bin', 'pip'), 'install', '-q', *PEERS], check=True)


def versions():
    def first(argv):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        except OSError as e:
            return str(e)
        return (done.stdout + done.stderr).strip().splitlines()[0]
    venv = os.path.join(PEER_VENV, 'bin')
    return {'python': platform.python_version(), 'cpus': os.cpu_count(),
            'kernel': platform.release(),
            'nginx': first([nginxBinary(), '-v']), 'wrk': first([wrkBinary(), '-v']),
            'gunicorn': first([os.path.join(venv, 'gunicorn'), '--version']),
            'uwsgi': first([os.path.join(venv, 'uwsgi'), '--version'])}


def parseArgs(argv):
    parser = argparse.ArgumentParser(prog='python -m bench.run', description=__doc__.split('\n')[0])
    parser.add_argument('--only', action='append', default=[],
                        help=f"benchmarks to run, comma-separated: {', '.join(SCENARIOS)}")
    parser.add_argument('--rounds', type=int, default=3, help="rounds per benchmark (default 3)")
    parser.add_argument('--duration', type=int, default=10,
                        help="seconds of each wrk run (default 10)")
    parser.add_argument('--keep', action='store_true', help="keep the work directory")
    args = parser.parse_args(argv)
    names = [n.strip() for item in args.only for n in item.split(',') if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(SCENARIOS)}")
    if not 1 <= args.rounds <= 20:
        parser.error(f"--rounds {args.rounds}: give 1 to 20")
    if not 1 <= args.duration <= 120:
        parser.error(f"--duration {args.duration}: give 1 to 120 seconds")
    args.names = names or list(SCENARIOS)
    return args


def runAll(args, workdir):
    rounds, errors, specs, done = {}, [], {}, {}
    for name in args.names:
        module = SCENARIOS[name]
        specs.update(module.TABLES)
        for number in range(args.rounds):
            print(f"{name}: round {number + 1} of {args.rounds}", flush=True)
            ctx = Context(os.path.join(workdir, f'{name}-{number}'), args.duration, number)
            os.makedirs(ctx.workdir)
            try:
                found = module.runRound(ctx)
            except (BenchError, OSError, subprocess.SubprocessError) as e:
                errors.append(f"{name} round {number + 1}: {e}")
                print(f"  FAILED: {e}", flush=True)
                continue
            for table, rows in found.items():
                done[table] = done.get(table, 0) + 1
                for row, figures in rows.items():
                    rounds.setdefault(table, {}).setdefault(row, []).append(figures)
    return rounds, errors, specs, done


def write(args, rounds, errors, specs, done, started, memory):
    os.makedirs(RESULTS, exist_ok=True)
    table_medians = report.medians(rounds)
    stamp = time.strftime('%Y%m%d-%H%M%S', time.localtime(started))
    command = 'python -m bench.run ' + ' '.join(sys.argv[1:])
    text = (f"# peak_lite benchmarks, {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}"
            f"\n\n`{command.strip()}`\n\nMemory on this machine: at the start, "
            f"{machine.describe(memory['start'])}; at the end, {machine.describe(memory['end'])}."
            f"\n\n" + report.markdown(specs, table_medians, done))
    if errors:
        text += '\n**Failed rounds:**\n\n' + '\n'.join(f'- {e}' for e in errors) + '\n'
    data = {'command': command.strip(), 'started': started, 'seconds': time.time() - started,
            'versions': versions(), 'rounds': rounds, 'medians': table_medians,
            'ratios': {t: report.ratios(specs[t], rows) for t, rows in table_medians.items()},
            'errors': errors, 'memory': memory}
    for base in (f'results-{stamp}', 'latest'):
        with open(os.path.join(RESULTS, base + '.json'), 'w') as f:
            json.dump(data, f, indent=1, sort_keys=True)
        with open(os.path.join(RESULTS, base + '.md'), 'w') as f:
            f.write(text)
    return text


def main(argv=None):
    args = parseArgs(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format='bench: %(message)s')
    try:
        nginxBinary()
        wrkBinary()
        ensurePeers()
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f"bench: installing the peers failed ({e}); check that PyPI is reachable",
              file=sys.stderr)
        return 2
    started = time.time()
    memory = {'start': machine.firstTouchMicros()}
    print(f"memory: {machine.describe(memory['start'])}", flush=True)
    workdir = tempfile.mkdtemp(prefix='peak-bench-')
    try:
        rounds, errors, specs, done = runAll(args, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    memory['end'] = machine.firstTouchMicros()
    print(write(args, rounds, errors, specs, done, started, memory))
    print(f"results in {RESULTS}/latest.md and latest.json ({time.time() - started:.0f} s)")
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
