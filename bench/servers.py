"""The servers under test: peak procman, gunicorn and uWSGI, each behind a unix socket.

Each server object writes what it needs into its own directory, starts in its
own session and is stopped by its pid (see ``procs.Started``):

    server = PeakServer('peak-fcgi', workdir, 'bench.apps:hello', workers=2)
    server.start()                 # waits until the socket exists and the workers run
    server.workers()               # live worker pids
    server.reload(); server.stop()

``protocol`` is ``'fastcgi'`` or ``'http'``: how nginx must talk to ``socket``.
"""

import os
import signal
import sys

from bench.procs import BenchError, Started, childrenOf, waitFor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_VENV = os.path.join(ROOT, '.bench-venv')


def serverEnv(extra=None):
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT
    env.pop('PYTHONDONTWRITEBYTECODE', None)
    env.update(extra or {})
    return env


class Server:
    """Common start/stop plumbing; subclasses give ``argv()``."""

    protocol = 'fastcgi'
    family = 'peer'

    def __init__(self, name, workdir, app, workers=2, env=None, startTimeout=30.0):
        self.name = name
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.app = app
        self.nworkers = workers
        self.env = serverEnv(env)
        self.socket = os.path.join(self.dir, 'app.sock')
        self.startTimeout = startTimeout
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid

    def argv(self):
        raise NotImplementedError

    def expectedWorkers(self):
        return self.nworkers

    def start(self):
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        self.proc = Started(self.argv(), os.path.join(self.dir, 'output.log'),
                            env=self.env, cwd=ROOT)
        try:
            self.waitWorkers(self.expectedWorkers(), self.startTimeout)
            waitFor(lambda: os.path.exists(self.socket), self.startTimeout,
                    f"{self.name}'s socket {self.socket}")
        except BenchError as e:
            out = self.proc.output()
            self.stop()
            raise BenchError(f"{self.name} did not start ({e}); its output ends:\n{out}") from None
        return self

    def workers(self):
        return childrenOf(self.proc.pid)

    def waitWorkers(self, n, timeout=30.0):
        def ready():
            if self.proc.returncode is not None:
                raise BenchError(f"{self.name} exited with status {self.proc.returncode}")
            kids = self.workers()
            return kids if len(kids) >= n else None
        return waitFor(ready, timeout, f"{n} workers of {self.name}")

    def reload(self):
        os.kill(self.proc.pid, signal.SIGHUP)

    def stop(self):
        if self.proc is not None:
            self.proc.stop(signal.SIGTERM)
            self.proc = None


class PeakServer(Server):
    """``peak procman`` with ``Command CGI app`` (FastCGI) or ``Command HTTP app``."""

    family = 'peak_lite'

    def __init__(self, name, workdir, app, workers=2, gateway='CGI', settings=None, **kw):
        super().__init__(name, workdir, app, workers, **kw)
        self.gateway = gateway
        self.protocol = 'fastcgi' if gateway == 'CGI' else 'http'
        self.settings = {'Prefork': workers, 'MinProcesses': workers, 'MaxProcesses': workers,
                         'StartInterval': '0.05', 'StopTimeout': 10, 'KillTimeout': 2}
        self.settings.update(settings or {})
        self.config = os.path.join(self.dir, 'app.conf')

    def configText(self):
        lines = [f"Command {self.gateway} {self.app}",
                 f"PidFile {self.dir}/app.pid",
                 f"StdErr {self.dir}/error_log",
                 f"Listen unix:{self.socket}"]
        lines += [f"{key} {value}" for key, value in self.settings.items()]
        return '\n'.join(lines) + '\n'

    def argv(self):
        with open(self.config, 'w') as f:
            f.write(self.configText())
        peak = os.path.join(os.path.dirname(sys.executable), 'peak')
        return [sys.executable, peak, 'procman', self.config]

    def expectedWorkers(self):
        return int(self.settings['Prefork'])


class GunicornServer(Server):
    """gunicorn, sync workers, on a unix socket (nginx talks HTTP to it)."""

    protocol = 'http'

    def __init__(self, name, workdir, app, workers=2, preload=False, **kw):
        super().__init__(name, workdir, app, workers, **kw)
        self.preload = preload

    def argv(self):
        argv = [os.path.join(PEER_VENV, 'bin', 'gunicorn'), '--workers', str(self.nworkers),
                '--worker-class', 'sync', '--bind', f'unix:{self.socket}',
                '--no-control-socket', '--log-level', 'warning', '--chdir', ROOT,
                '--pid', os.path.join(self.dir, 'app.pid'), '--timeout', '60',
                '--graceful-timeout', '10']
        if self.preload:
            argv.append('--preload')
        return argv + [self.app]


class UwsgiServer(Server):
    """uWSGI (the pyuwsgi wheel) with ``--fastcgi-socket``; optionally lazy-apps or cheaper."""

    def __init__(self, name, workdir, app, workers=2, lazy=False, cheaper=None, **kw):
        super().__init__(name, workdir, app, workers, **kw)
        self.lazy = lazy
        self.cheaper = cheaper

    def argv(self):
        uwsgi = os.path.join(PEER_VENV, 'bin', 'uwsgi')
        argv = [uwsgi, '--master', '--processes', str(self.nworkers),
                '--fastcgi-socket', self.socket, '--module', self.app,
                '--chdir', ROOT, '--pythonpath', ROOT, '--need-app', '--die-on-term',
                '--disable-logging', '--listen', '1024',
                # pyuwsgi re-execs this with its own argv (the script first): give
                # the virtualenv's python, or a reload runs the base python and dies
                '--binary-path', os.path.join(PEER_VENV, 'bin', 'python'),
                '--pidfile', os.path.join(self.dir, 'app.pid')]
        if self.lazy:
            argv.append('--lazy-apps')
        if self.cheaper is not None:
            argv += ['--cheaper', str(self.cheaper), '--cheaper-algo', 'spare',
                     '--cheaper-initial', str(self.cheaper)]
        return argv

    def expectedWorkers(self):
        return self.cheaper if self.cheaper is not None else self.nworkers
