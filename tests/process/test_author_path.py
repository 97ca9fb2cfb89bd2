"""The app author's path through real processes: one committed assembly under every
command, errors that point at the author's code, options appended to a gateway Command."""

import contextlib
import os
import socket
import sqlite3
import subprocess

import pytest

from tests.support.fcgi_client import FastCGIClient, environFor
from tests.support.procman import ROOT, Procman, oneLineEach, peakArgv
from tests.support.procs import waitFor

APP = 'tests.running.sample_author:App'
FAILING = 'tests.running.sample_author:FailingApp'
INI = "[peak.running]\napp = importString('peak_lite.running.gateways:HTTPInterpreter')\n"


def rows(db):
    """The preload rows another process sees, or None while there is no table."""
    # closing(): a connection's own ``with`` ends its transaction, not the connection,
    # whose descriptor would stay open until some later garbage collection.
    try:
        with contextlib.closing(sqlite3.connect(f'file:{db}?mode=ro', uri=True,
                                                timeout=0)) as conn:
            return conn.execute("SELECT note FROM preload").fetchall()
    except sqlite3.OperationalError:
        return None


def assertUnlocked(db):
    """No transaction of the server holds the write lock: take it ourselves, at once."""
    conn = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def httpGet(path, sockPath, timeout=10.0):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(sockPath)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
        data = b''
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b'\r\n\r\n')
    return head.split(b'\r\n')[0], body


def fcgiGet(path, sockPath):
    with FastCGIClient(sockPath) as c:
        r = c.request(environFor('GET', path))
    return r.status, r.body


class Server:
    """One way of starting the app: ``start(spec)`` returns the process, ``get(path)`` a body."""

    def __init__(self, how, tmp_path, procs):
        self.how, self.dir, self.procs = how, tmp_path, procs
        self.db = str(tmp_path / 'author.db')
        self.sock = str(tmp_path / 'app.sock')
        self.env = {'AUTHOR_DB': self.db, 'PYTHONPATH': ROOT}
        self.pm = None

    def start(self, spec):
        run = dict(env=self.env, cwd=str(self.dir), stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE)
        if self.how == 'HTTP':
            return self.procs(peakArgv('HTTP', f'unix:{self.sock}', spec), **run)
        if self.how == 'runIni':
            ini = self.dir / 'app.ini'
            ini.write_text(INI)
            return self.procs(peakArgv('runIni', str(ini), f'unix:{self.sock}', spec), **run)
        if self.how == 'CGI':
            # FastCGI on fd 0, as a web server's FastCGI support hands it over.
            listener = socket.socket(socket.AF_UNIX)
            listener.bind(self.sock)
            listener.listen(8)
            try:
                return self.procs(peakArgv('CGI', spec), stdin=listener.fileno(), **run)
            finally:
                listener.close()
        self.pm = Procman(self.dir, self.procs, command=f'CGI {spec}', env=self.env)
        self.pm.start(wait=False)
        return self.pm.proc

    def get(self, path):
        if self.how in ('HTTP', 'runIni'):
            status, body = httpGet(path, self.sock)
            assert status.endswith(b'200 OK'), (status, body)
            return body
        status, body = fcgiGet(path, self.sock)
        assert status == 200, body
        return body


HOWS = ['HTTP', 'CGI', 'runIni', 'procman']


@pytest.mark.parametrize('how', HOWS)
def test_assembly_writes_are_committed_before_the_first_request(how, tmp_path, procs):
    server = Server(how, tmp_path, procs)
    proc = server.start(APP)
    # No request yet: another process sees what the assembly event wrote,
    # and the server holds no write lock.
    waitFor(lambda: rows(server.db) == [('assembled',)] or proc.returncode is not None,
             timeout=20, message="the assembly's row, committed")
    assert proc.returncode is None, proc.popen.communicate(timeout=5)
    assertUnlocked(server.db)
    waitFor(lambda: os.path.exists(server.sock), message="the listening socket")
    if server.pm is not None:
        server.pm.waitChildren(1)
    assert server.get('/').startswith(b'rows=1 ')
    assert server.get('/').startswith(b'rows=1 ')
    if server.pm is not None:
        server.pm.stop()


@pytest.mark.parametrize('how', HOWS)
def test_a_failing_assembly_event_leaves_no_rows_and_exits_3(how, tmp_path, procs):
    server = Server(how, tmp_path, procs)
    proc = server.start(FAILING)
    assert proc.wait(30) == 3
    out, err = proc.popen.communicate(timeout=5)
    texts = [err.decode()] + ([server.pm.log()] if server.pm is not None else [])
    for line in oneLineEach(*texts):
        assert 'sample_author.py:18 in uponAssembly' in line and 'Traceback' not in line
    assert rows(server.db) is None
    assertUnlocked(server.db)


@pytest.mark.parametrize('spec, where', [
    (FAILING, ["tests/running/sample_author.py:18 in uponAssembly: KeyError: 'acc-missing'",
               "/<FailingApp>/cache"]),
    ('tests.running.sample_author:RecipeApp',
     ["tests/running/sample_author.py:22 in <lambda>: ValueError:", "/<RecipeApp>/recipe.table"]),
    ('tests.running.sample_author_typo:App',
     ["tests/running/sample_author_typo.py:7 in App:", "class tests.running.sample_author_typo.App",
      "unknown keyword uponAsembly=; did you mean uponAssembly=?"]),
])
def test_errors_in_the_authors_code_name_file_line_and_component(spec, where, tmp_path, procs):
    env = {'AUTHOR_DB': str(tmp_path / 'author.db')}
    run = dict(env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc = procs(peakArgv('CGI', spec), **run)
    out, err = proc.popen.communicate(timeout=30)
    assert proc.returncode == 3, err
    line, = oneLineEach(err.decode())
    assert 'Traceback' not in line and 'bad application spec' not in line
    for fragment in where:
        assert fragment in line, line
    # --debug (after the app spec) or PEAK_DEBUG=1 shows the traceback as well.
    for argv, extra in ((peakArgv('CGI', spec, '--debug'), {}),
                        (peakArgv('CGI', spec), {'PEAK_DEBUG': '1'})):
        proc = procs(argv, **dict(run, env={**env, **extra}))
        out, err = proc.popen.communicate(timeout=30)
        assert proc.returncode == 3
        assert err.decode().startswith('Traceback') and where[0] in err.decode()


def test_procman_config_with_a_gateway_option_appended_serves(tmp_path, procs):
    """``peak procman CONF --gateway-option VALUE``: the words are appended to Command."""
    pm = Procman(tmp_path, procs, command=f'CGI {APP}',
                 env={'AUTHOR_DB': str(tmp_path / 'author.db')})
    pm.proc = procs(peakArgv('procman', pm.path, '--read-timeout', '5', '--idle-timeout', '1'),
                    env=pm.env, cwd=str(tmp_path), stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)
    pm.pid = pm.proc.pid
    waitFor(lambda: pm.readPid() == pm.pid or pm.proc.returncode is not None, 20,
             message="the manager's pid file")
    assert pm.proc.returncode is None, pm.failure()
    pm.waitChildren(1)
    r = pm.request('/')
    assert r.status == 200 and r.body.startswith(b'rows=1 ')
    pm.stop()


def test_the_executable_config_example_of_the_procman_docs(tmp_path, procs):
    """docs/procman.md: ``./myapp.conf --debug``, --debug appended to a gateway Command."""
    conf = tmp_path / 'myapp.conf'
    conf.write_text(f"#!/usr/bin/env -S peak procman\n"
                    f"Command CGI {APP}\n"
                    f"PidFile {tmp_path / 'myapp.pid'}\n"
                    f"Listen unix:{tmp_path / 'app.sock'}\n")
    conf.chmod(0o755)
    proc = procs(['./myapp.conf', '--debug'], env={'AUTHOR_DB': str(tmp_path / 'a.db'),
                                                   'PYTHONPATH': ROOT},
                 cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    waitFor(lambda: os.path.exists(tmp_path / 'app.sock') or proc.returncode is not None,
             20, message="the manager's socket")
    assert proc.returncode is None, proc.popen.communicate(timeout=5)
    status, body = waitFor(lambda: _tryGet(str(tmp_path / 'app.sock')), 20,
                            message="a child answering")
    assert status == 200 and body == b'rows=1 debug=1\n'
    proc.signal(15)
    assert proc.wait(30) == 0


def _tryGet(sockPath):
    try:
        return fcgiGet('/', sockPath)
    except OSError:
        return None


@pytest.mark.parametrize('app, ini, fragments, served', [
    ('Account', '[acc]\ngreeting = "hello"\nfarewell = "bye"\n', None, 200),
    ('MisspelledAccount', '[acc]\ngreeting = "hello"\n',
     ["property 'acc.greting', obtained by /<MisspelledAccount>/greeter.greeting",
      "did you mean 'acc.greeting'?", "/peak_lite.ini, ", "/child.ini)"], 500),
    ('Account', '[acc]\ngreeting = hello\n',
     ["child.ini:2: [acc] greeting: evaluating 'hello' raised NameError",
      "did you mean 'hello' as a string?"], 500),
    ('Account', '[acc]\ngreeting = "hello"\nfarewell = bye\n',
     ["child.ini:3: [acc] farewell: evaluating 'bye' raised NameError",
      "did you mean 'bye' as a string?"], 200),
])
def test_check_resolves_what_the_app_obtains_and_every_childconfig_value(
        app, ini, fragments, served, tmp_path, procs):
    (tmp_path / 'child.ini').write_text(ini)
    pm = Procman(tmp_path, procs, command=f'CGI tests.running.sample_author:{app}',
                 extra='ChildConfig child.ini')
    proc = procs(peakArgv('procman', '--check', pm.path), env=pm.env, cwd=str(tmp_path),
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.popen.communicate(timeout=30)
    if fragments is None:
        assert proc.returncode == 0 and b'configuration OK' in out, err
    else:
        assert proc.returncode == 2 and not out
        line, = oneLineEach(err.decode())
        for fragment in fragments:
            assert fragment in line, line
    # Without --check the same config starts: what --check found shows only later, if ever.
    pm.start()
    r = pm.request("/")
    assert r.status == served, r.body
    pm.stop()


def test_relative_paths_in_command_resolve_against_the_managers_directory(tmp_path, procs):
    """docs/components.md: Command's words are passed as they are, not made absolute."""
    conf = tmp_path / 'conf'
    conf.mkdir()
    site = tmp_path / 'site'
    site.mkdir()
    (site / 'app.ini').write_text(
        "[peak.running]\napp = importString('peak_lite.running.commands:Alias')"
        "(command=['CGI', 'tests.running.sample_author:Account'])\n"
        "[acc]\ngreeting = 'hello'\n")
    pm = Procman(conf, procs, command='runIni app.ini')

    def check(cwd):
        proc = procs(peakArgv('procman', '--check', pm.path), env=pm.env, cwd=str(cwd),
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = proc.popen.communicate(timeout=30)
        return proc.returncode, err.decode()
    code, err = check(conf)
    assert code == 2 and "config file 'app.ini' does not exist" in err
    assert check(site) == (0, '')
