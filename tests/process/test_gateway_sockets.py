"""``peak FastCGI SOCKET``: the same socket rules as procman, through real servers."""

import os
import socket
import stat

from tests.support.fcgi_client import FastCGIClient, environFor
from tests.support.procman import peakArgv
from tests.support.procs import waitFor


def answers(path):
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    with FastCGIClient(path, timeout=10) as c:
        return c.request(environFor('GET', '/')).status == 200


def test_a_second_server_never_takes_a_live_servers_socket(tmp_path, procs):
    path = str(tmp_path / 'app.sock')
    first = procs(peakArgv('FastCGI', f'unix:{path}', 'tests.gateways.apps:hello'))
    waitFor(lambda: answers(path), 20, message="the first server to answer")
    inode = os.lstat(path).st_ino
    second = procs(peakArgv('FastCGI', f'unix:{path}', 'tests.gateways.apps:hello'),
                   stderr=-1)
    assert second.wait(20) == 2
    err = second.popen.stderr.read().decode()
    assert 'another process is listening there' in err and len(err.splitlines()) == 1
    assert os.lstat(path).st_ino == inode and answers(path)
    assert first.returncode is None


def test_a_unix_socket_gets_the_mode_of_its_spec(tmp_path, procs):
    path = str(tmp_path / 'app.sock')
    procs(peakArgv('FastCGI', f'unix:{path}:0660', 'tests.gateways.apps:hello'))
    waitFor(lambda: answers(path), 20, message="the server to answer")
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o660


def test_a_unix_socket_is_owner_only_by_default(tmp_path, procs):
    path = str(tmp_path / 'app.sock')
    procs(peakArgv('FastCGI', f'unix:{path}', 'tests.gateways.apps:hello'))
    waitFor(lambda: answers(path), 20, message="the server to answer")
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600


def test_fastcgi_serves_a_listening_socket_inherited_on_a_descriptor(tmp_path, procs):
    path = str(tmp_path / 'inherited.sock')
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path)
        listener.listen(16)
        fd = listener.fileno()
        procs(peakArgv('FastCGI', f'fd:{fd}', 'tests.gateways.apps:hello'), pass_fds=(fd,))
    waitFor(lambda: answers(path), 20, message="the server on the inherited socket")
