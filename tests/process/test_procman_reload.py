"""SIGHUP restarts through real processes: under load behind real nginx, code and config
changes, refused restarts, and the socket inherited on fd 0."""

import os
import signal
import sys
from pathlib import Path

from tests.process.test_procman_lifecycle import listeningUnixSocket, seedProcman
from tests.support.load import ClientLoop, urlGet
from tests.support.nginx import Nginx
from tests.support.procman import ROOT, Procman
from tests.support.procs import waitFor

APP_SOURCE = """\
import os

VERSION = {version!r}


def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [f"{{VERSION}} pid={{os.getpid()}}\\n".encode()]
"""


def newPool(pm, old, n):
    """Wait for ``n`` children or more (a pool under load may grow once the old
    generation has stopped accepting), none of which is in ``old``; return them."""
    def ready():
        kids = set(pm.children())
        return kids if len(kids) >= n and not kids & old else None
    return waitFor(ready, 30, message=f"{n} new children replacing {sorted(old)}")


def writeApp(directory, version):
    (directory / 'hupapp.py').write_text(APP_SOURCE.format(version=version))


def test_sighup_under_load_through_nginx(tmp_path, procs):
    code = tmp_path / 'code'
    code.mkdir()
    writeApp(code, 'v1')
    env = {'PYTHONPATH': os.pathsep.join([str(code), ROOT] + [p for p in sys.path if p]),
           'PYTHONDONTWRITEBYTECODE': '1'}
    pm = Procman(tmp_path, procs, command='CGI hupapp:app', prefork=2, env=env).start()
    config = Path(pm.path).read_text()
    with Nginx(tmp_path, fastcgi_pass=f'unix:{pm.socket}') as nginx:
        # Each client also stops after 5000 requests or 60 s, whatever becomes of the test.
        with ClientLoop(urlGet(nginx.url + '/'), threads=4, limit=5000, seconds=60) as clients:
            waitFor(lambda: clients.count() >= 20, 20, message="requests flowing")
            first = set(pm.children())

            pm.signal(signal.SIGHUP)                      # restart 1: same code
            second = newPool(pm, first, 2)
            pm.waitLog('restarting: exec')
            count = clients.count()
            waitFor(lambda: clients.count() >= count + 20, 20, message="requests after 1")

            writeApp(code, 'v2')                          # restart 2: new code
            pm.signal(signal.SIGHUP)
            newPool(pm, first | second, 2)
            waitFor(lambda: clients.served('v2 pid='), 20, message="the new code served")
            # Children the previous pool grew after `second` was read retire too:
            # the new pool is what is left once the previous generation has gone.
            waitFor(lambda: pm.log().count('the previous generation has stopped') >= 2, 30,
                    message="the previous generation to stop")
            third = set(pm.children())

            pm.write(config + "MaxProcesses banana\n")     # a broken config is refused
            pm.signal(signal.SIGHUP)
            pm.waitLog('restart refused')
            assert 'MaxProcesses' in pm.log().split('restart refused')[-1].splitlines()[0]
            pm.write(config)
            (code / 'hupapp.py').write_text("def app(:\n")    # nor code that does not load
            pm.signal(signal.SIGHUP)
            waitFor(lambda: pm.log().count('restart refused') == 2, 30,
                     message="the second refusal")
            assert 'SyntaxError' in pm.log().split('restart refused')[-1].splitlines()[0]
            count = clients.count()
            waitFor(lambda: clients.count() >= count + 20, 20, message="requests after refusal")
            assert third <= set(pm.children())            # the old pool kept serving
        failures = clients.failures()
        assert failures == [], failures[:5]
        assert clients.count() > 100
        assert pm.proc.returncode is None and pm.readPid() == pm.pid   # same manager
        bodies = [s.value for s in clients.answers()]
        assert all(b.startswith('v2 ') for b in bodies[-20:])
        assert not any(f"pid={k}\n" in b for k in first | second for b in bodies[-20:])
        pm.stop()


def test_sighup_with_the_socket_inherited_on_fd0(tmp_path, procs):
    pm = seedProcman(tmp_path, procs)
    with listeningUnixSocket(pm.socket) as sock:
        pm.start(stdin=sock.fileno(), children=3)
    old = set(pm.children())
    pm.signal(signal.SIGHUP)
    newPool(pm, old, 3)
    assert pm.request('/').status == 200
    assert pm.readPid() == pm.pid
    pm.stop()
