"""Run the docs' snippets for real: a copy of the project, ``make run``, a real nginx.

    demo = DemoCopy(procs).start()     # `make run` in a copy nginx's user can traverse
    demo.get('/visits')                # (status, body) over the demo's HTTP port
    runShell(snippet, demo, procs)     # bash -euo pipefail, in the copy
    runNginx(snippet, demo, procs)     # nginx as www-data in front of the demo
    demo.stop()                        # SIGTERM, make exits 0, socket and pid file gone

pytest's temporary directories are 0700, so nginx's workers could never
reach a socket inside one: the copy lives in its own 0755 directory under
the system's temporary directory, and is removed at the end.
"""

import http.client
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile

import pytest

from tests.support.nginx import NGINX, freePort
from tests.support.procs import VENV_BIN, childrenOf, pidAlive, waitFor
from tests.docs.snippets import ROOT

def scriptsBin():
    """The directory holding the installed ``peak`` and ``invoke`` scripts, or None.

    This interpreter's virtualenv, else a buildout's ``bin`` (which is not
    where its interpreter lives).
    """
    for where in (VENV_BIN, str(ROOT / 'bin')):
        if all(os.path.exists(os.path.join(where, name)) for name in ('peak', 'invoke')):
            return where
    return None


COPIED = ['README.md', 'Makefile', 'setup.py', 'pyproject.toml', 'examples']
DEMO_HTTP = '127.0.0.1:8080'
NGINX_USER = 'www-data'


def httpGet(port, path, timeout=10.0):
    """(status, body text) of one GET to 127.0.0.1:port."""
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        conn.request('GET', path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode('utf-8', 'replace')
    finally:
        conn.close()


class DemoCopy:
    """A copy of the project, served by its own ``make run``."""

    def __init__(self, procs):
        if not os.path.exists(os.path.join(VENV_BIN, 'peak')):
            pytest.skip("`make run` needs the project installed in a virtualenv (make's .venv)")
        self.procs = procs
        self.proc = None
        self.root = tempfile.mkdtemp(prefix='peak_lite-demo-')
        try:
            self._copy()
        except BaseException:
            self.remove()
            raise

    def _copy(self):
        os.chmod(self.root, 0o755)
        for name in COPIED:
            src, dst = ROOT / name, os.path.join(self.root, name)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns('var', '__pycache__'))
            else:
                shutil.copy2(src, dst)
        # The virtualenv `make` would build is the one running these tests.
        os.symlink(os.path.dirname(VENV_BIN), os.path.join(self.root, '.venv'))
        self.port = None
        self.conf = os.path.join(self.root, 'examples', 'demo.conf')
        with open(self.conf) as f:
            self.confText = f.read()
        assert re.search(rf'^Listen\s+{re.escape(DEMO_HTTP)}\b', self.confText, re.M), \
            f"demo.conf should listen on {DEMO_HTTP}"
        self.var = os.path.join(self.root, 'examples', 'var')
        self.socket = os.path.join(self.var, 'demo.sock')
        self.pidfile = os.path.join(self.var, 'demo.pid')
        self.log = os.path.join(self.root, 'make-run.log')

    def rewrite(self, text):
        """A snippet's text with this copy's path, port and socket."""
        text = (text.replace('/path/to/peak_lite', self.root)
                    .replace(DEMO_HTTP, f'127.0.0.1:{self.port}'))
        return re.sub(r'unix:/run/myapp/\w+\.sock', f'unix:{self.socket}', text)

    def start(self, timeout=30.0, attempts=3):
        for attempt in range(attempts):
            # A port free a moment ago can be taken before the manager binds it.
            self.port = freePort()
            with open(self.conf, 'w') as f:
                f.write(self.confText.replace(DEMO_HTTP, f'127.0.0.1:{self.port}'))
            # `-o`: never rebuild the shared virtualenv from the copy.
            with open(self.log, 'wb') as out:
                self.proc = self.procs(['make', '-o', '.venv/.installed', 'run'],
                                       cwd=self.root, stdout=out, stderr=subprocess.STDOUT)
            waitFor(lambda: self.serving() or self.proc.returncode is not None, timeout,
                     message="`make run` to serve the demo")
            if self.proc.returncode is None:
                return self
            if 'Address already in use' not in self.output():
                break
        raise AssertionError(f"make run exited {self.proc.returncode}: {self.output()}")

    def serving(self):
        try:
            return os.path.exists(self.socket) and httpGet(self.port, '/', 2.0)[0] == 200
        except OSError:
            return False

    def managerPid(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def output(self):
        with open(self.log, errors='replace') as f:
            return f.read()

    def get(self, path):
        return httpGet(self.port, path)

    def stop(self, timeout=30.0):
        """SIGTERM the manager; `make run` must exit 0 and leave no socket or pid file."""
        if self.proc is not None and self.proc.returncode is None:
            pid = self.managerPid()
            assert pid, f"no pid in {self.pidfile}: {self.output()}"
            os.kill(pid, signal.SIGTERM)
            assert self.proc.wait(timeout) == 0, self.output()
            assert not os.path.exists(self.socket), ('socket left', self.output())
            assert not os.path.exists(self.pidfile), ('pidfile left', self.output())
        self.proc = None

    def remove(self):
        shutil.rmtree(self.root, ignore_errors=True)


def runShell(snippet, demo, procs, timeout=60.0):
    """Run a shell snippet in the copy with a deadline; return its output."""
    with open(os.path.join(demo.root, 'snippet.log'), 'wb') as out:
        proc = procs(['bash', '-euo', 'pipefail', '-c', demo.rewrite(snippet.text)],
                     cwd=demo.root, stdout=out, stderr=subprocess.STDOUT)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        code = None
    with open(os.path.join(demo.root, 'snippet.log'), errors='replace') as f:
        output = f.read()
    outcome = f"ran past {timeout}s" if code is None else f"exited {code}"
    assert code == 0, f"{snippet.id}: the snippet {outcome}:\n{snippet.text}--- output:\n{output}"
    return output


NGINX_CONF = """\
user {user};
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;
{block}
}}
"""


UPSTREAM = re.compile(r'^upstream\s+\w+\s*\{[^{}]*\}[ \t]*\n?', re.M)


def nginxHttpBlock(text, port, where):
    """A snippet made into the body of an ``http { }`` block serving on 127.0.0.1:port.

    A block with no ``server`` is wrapped in one (its ``upstream`` blocks
    stay outside); a ``server``'s one ``listen`` line gets the port.
    """
    if not re.search(r'^\s*server\s*\{', text, re.M):
        upstreams = ''.join(UPSTREAM.findall(text))
        rest = UPSTREAM.sub('', text)
        return f"{upstreams}server {{\n    listen 127.0.0.1:{port};\n{rest}}}\n"
    text, n = re.subn(r'\blisten\s+[^;]+;', f'listen 127.0.0.1:{port};', text)
    assert n == 1, f"{where}: the server block must have one listen line"
    return text


class NginxRun:
    """A private nginx master, as root, whose workers run as ``www-data``.

    Its conf directory holds only nginx.conf and a link to the distribution's
    own ``/etc/nginx/fastcgi_params``, so ``include fastcgi_params`` reads
    exactly what a stock install reads.
    """

    def __init__(self, snippet, demo, procs):
        if os.geteuid() != 0:
            pytest.skip("running nginx's workers as www-data needs root")
        try:
            self.uid = pwd.getpwnam(NGINX_USER).pw_uid
        except KeyError:
            pytest.skip(f"no {NGINX_USER} user on this machine")
        if not os.path.exists('/etc/nginx/fastcgi_params'):
            pytest.skip("no /etc/nginx/fastcgi_params: nginx is not installed from a package")
        self.snippet, self.procs = snippet, procs
        self.dir = os.path.join(demo.root, 'nginx')
        os.makedirs(self.dir, mode=0o755)
        os.symlink('/etc/nginx/fastcgi_params', os.path.join(self.dir, 'fastcgi_params'))
        self.text = demo.rewrite(snippet.text)
        self.conf = os.path.join(self.dir, 'nginx.conf')
        self.port = freePort()
        self._writeConf()
        self.proc = None

    def _writeConf(self):
        block = nginxHttpBlock(self.text, self.port, self.snippet.id)
        with open(self.conf, 'w') as f:
            f.write(NGINX_CONF.format(user=NGINX_USER, dir=self.dir, block=block))

    def _start(self, timeout):
        self.proc = self.procs([NGINX, '-p', self.dir + '/', '-c', self.conf,
                                '-e', os.path.join(self.dir, 'error.log'), '-g', 'daemon off;'])

        def up():
            if self.proc.returncode is not None:
                return True
            try:
                httpGet(self.port, '/__never__', 2.0)
                return True
            except OSError:
                return False
        waitFor(up, timeout, message="nginx to listen")

    def errorLog(self):
        try:
            with open(os.path.join(self.dir, 'error.log'), errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def start(self, timeout=15.0, attempts=3):
        for attempt in range(attempts):
            self._start(timeout)
            if self.proc.returncode is None:
                break
            if 'Address already in use' not in self.errorLog():
                break
            self.port = freePort()     # taken since it was picked: pick again
            self._writeConf()
        assert self.proc.returncode is None, f"nginx exited:\n{self.errorLog()}"
        workers = waitFor(lambda: childrenOf(self.proc.pid), timeout,
                           message="nginx's worker")
        for pid in workers:
            with open(f'/proc/{pid}/status') as f:
                uids = next(line for line in f if line.startswith('Uid:')).split()[1:]
            assert set(map(int, uids)) == {self.uid}, f"worker {pid} runs as uid {uids}"
        return self

    def get(self, path):
        return httpGet(self.port, path)

    def stop(self):
        if self.proc is not None:
            self.proc.stop()
            assert not pidAlive(self.proc.pid)
            self.proc = None


def runNginx(snippet, demo, procs):
    """Serve the demo through the snippet; assert each URL reaches its route."""
    nginx = NginxRun(snippet, demo, procs).start()
    try:
        under = snippet.value('under')
        seen = {path: nginx.get(under + path) for path in ('/', '/visits', '/nope')}
        where = f"{snippet.id}: through nginx"
        status, body = seen['/']
        assert status == 200 and 'preloaded by manager' in body, \
            f"{where}, / gave {status} {body!r}\n{nginx.errorLog()}"
        status, body = seen['/visits']
        assert status == 200 and body.startswith('visit ') and 'recorded by worker' in body, \
            f"{where}, /visits gave {status} {body!r}\n{nginx.errorLog()}"
        assert seen['/nope'][0] == 404, f"{where}, /nope gave {seen['/nope']}"
        assert 'Permission denied' not in nginx.errorLog()
    finally:
        nginx.stop()
