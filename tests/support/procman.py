"""Run a real ``peak procman`` in a test and watch its pool.

    pm = Procman(tmp_path, procs, command='CGI tests.procman.apps:hello',
                 extra='MaxProcesses 3')      # more config lines
    pm.start()                                # waits for the pid file and the Prefork children
    pm.request('/path')                       # FastCGI GET over the unix socket -> Response
    pm.children()                             # live child pids
    pm.signal(signal.SIGHUP)
    pm.stop()                                 # SIGTERM, wait for exit 0, pid file gone

The manager runs in its own session; the ``procs`` fixture kills the process
group at teardown and asserts nothing is left.
"""

import os
import signal
import subprocess
import sys
import textwrap

from tests.support.fcgi_client import FastCGIClient, environFor
from tests.support.procs import VENV_BIN, childrenOf, pidAlive, waitFor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def peakArgv(*args):
    """argv that runs the ``peak`` script of this interpreter's environment."""
    script = os.path.join(VENV_BIN, 'peak')
    if os.path.exists(script):
        return [sys.executable, script, *args]
    return [sys.executable, '-c', 'import sys; from peak_lite.running.scripts import peak; '
            'sys.exit(peak())', *args]


def oneLineEach(*texts):
    """Assert each text (a terminal's stderr, a StdErr file) is exactly one line, no fork
    logged; return those lines."""
    found = []
    for text in texts:
        lines = [line for line in text.splitlines() if line.strip()]
        assert len(lines) == 1, text
        assert 'started child' not in text
        found.append(lines[0])
    return found


class Procman:
    def __init__(self, tmp_path, procs, command='CGI tests.procman.apps:hello', extra='',
                 listen=True, prefork=None, name='app.conf', env=None):
        self.dir = tmp_path
        self.procs = procs
        self.socket = str(tmp_path / 'app.sock')
        self.pidfile = str(tmp_path / 'app.pid')
        self.stderr = str(tmp_path / 'error_log')
        self.scoreboard = str(tmp_path / 'scoreboard')
        self.path = str(tmp_path / name)
        self.env = dict(env or {})
        self.env.setdefault('PYTHONPATH', os.pathsep.join([ROOT] + [p for p in sys.path if p]))
        self.prefork = prefork
        self.proc = None
        lines = [f"Command {command}", f"PidFile {self.pidfile}", f"StdErr {self.stderr}",
                 "StartInterval 0.05", "StopTimeout 5", "KillTimeout 2"]
        if listen:
            lines.append(f"Listen unix:{self.socket}")
        if prefork is not None:
            lines.append(f"Prefork {prefork}")
        lines.append(textwrap.dedent(extra).strip())
        if '<BusyStarter>' not in extra:
            lines.append(f"<BusyStarter>\n  Semaphore {self.scoreboard}\n  RunEvery 5\n"
                         f"</BusyStarter>")
        self.write('\n'.join(lines) + '\n')

    def write(self, text):
        with open(self.path, 'w') as f:
            f.write(text)

    def start(self, *args, children=None, stdin=subprocess.DEVNULL, pass_fds=(), wait=True,
              timeout=20.0):
        self.proc = self.procs(peakArgv('procman', *args, self.path), env=self.env,
                               stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               cwd=str(self.dir), pass_fds=pass_fds)
        self.pid = self.proc.pid
        if wait:
            waitFor(lambda: self.readPid() == self.pid or self.proc.returncode is not None,
                     timeout, message="the manager's pid file")
            assert self.proc.returncode is None, self.failure()
            want = children if children is not None else (self.prefork or 1)
            self.waitChildren(want, timeout)
        return self

    def failure(self):
        out, err = self.proc.popen.communicate(timeout=10)
        return (f"manager exited {self.proc.returncode}: {err.decode(errors='replace')}"
                f"\nStdErr file: {self.log()}")

    def readPid(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return None

    def children(self):
        return childrenOf(self.pid)

    def waitChildren(self, n, timeout=20.0, exact=True):
        def ready():
            kids = self.children()
            return kids if (len(kids) == n if exact else len(kids) >= n) else None
        return waitFor(ready, timeout, message=f"{n} children of manager {self.pid}")

    def log(self):
        try:
            with open(self.stderr, errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def waitLog(self, text, timeout=20.0):
        return waitFor(lambda: text in self.log(), timeout, message=f"{text!r} in the log")

    def request(self, path='/', method='GET', body=b'', timeout=10.0, **extra):
        with FastCGIClient(self.socket, timeout=timeout) as c:
            return c.request(environFor(method, path, body=body, **extra), body=body)

    def signal(self, signum):
        os.kill(self.pid, signum)

    def stop(self, timeout=20.0):
        """SIGTERM the manager; assert it exits 0, its children are gone and the pid file too."""
        kids = self.children()
        self.signal(signal.SIGTERM)
        assert self.proc.wait(timeout) == 0, self.failure()
        waitFor(lambda: not any(pidAlive(k) for k in kids), timeout,
                 message="the children to exit")
        assert not os.path.exists(self.pidfile)
