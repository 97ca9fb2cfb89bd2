"""The manager's sockets through real restarts: adopted by full address, never changed
through a path someone replaced, owned as ListenOwner says, bound again at once."""

import grp
import http.client
import os
import pwd
import shutil
import signal
import socket
import stat
import sys
import tempfile
import urllib.error
import urllib.request

import pytest

from peak_lite.running.sockets import Listener, parseAddress
from tests.support.nginx import Nginx, freePort
from tests.support.procman import Procman, peakArgv
from tests.support.procs import childrenOf, openFds, waitFor

root = pytest.mark.skipif(os.getuid() != 0, reason="needs root: other users' files and sockets")


def httpStatus(host, port, path='/'):
    """Status of a plain HTTP GET (the CGI gateway sniffs HTTP beside FastCGI)."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request('GET', path)
        return conn.getresponse().status
    finally:
        conn.close()


def refused(host, port):
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    with socket.socket(family) as s:
        s.settimeout(5)
        try:
            s.connect((host, port))
        except ConnectionRefusedError:
            return True
    return False


def edit(pm, old, new):
    with open(pm.path) as f:
        text = f.read()
    assert old in text
    pm.write(text.replace(old, new))


def restarted(pm, times=1):
    """Wait until the manager has started ``times`` more times than once."""
    waitFor(lambda: pm.log().count(f'manager {pm.pid} started:') > times, 30,
             message=f"manager {pm.pid} to restart")
    pm.waitChildren(pm.prefork or 1, 20)


@pytest.fixture
def sharedDir():
    """A directory other users can reach (pytest's tmp_path is root-only)."""
    path = tempfile.mkdtemp(prefix='peak-sockets-')
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize('new', ['127.0.0.2', '::1'])
def test_sighup_moves_a_listener_whose_address_changed(tmp_path, procs, new):
    port = freePort()
    pm = Procman(tmp_path, procs, listen=False, extra=f"Listen 127.0.0.1:{port}")
    pm.start()
    assert httpStatus('127.0.0.1', port) == 200
    host = f'[{new}]' if ':' in new else new
    edit(pm, f"Listen 127.0.0.1:{port}", f"Listen {host}:{port}")
    pm.signal(signal.SIGHUP)
    restarted(pm)
    assert httpStatus(new, port) == 200
    # The old address stays open only in the previous generation's children,
    # which serve what they accepted and go once the new ones are ready.
    waitFor(lambda: refused('127.0.0.1', port), 20, message="the old address to close")
    assert f'serving {host}:{port}' in pm.log().rsplit('started:', 1)[1]
    pm.stop()


def test_sighup_keeps_the_socket_of_an_address_written_another_way(tmp_path, procs):
    port = freePort()
    pm = Procman(tmp_path, procs, listen=False, extra=f"Listen localhost:{port}")
    pm.start()
    before = listeningInode(port)
    edit(pm, f"Listen localhost:{port}", f"Listen 127.0.0.1:{port}")
    pm.signal(signal.SIGHUP)
    restarted(pm)
    assert listeningInode(port) == before      # carried across the exec, not bound afresh
    assert httpStatus('127.0.0.1', port) == 200
    pm.stop()


def listeningInode(port):
    """The inode of the socket listening on 127.0.0.1:port, from /proc/net/tcp."""
    with open('/proc/net/tcp') as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == f'0100007F:{port:04X}' and fields[3] == '0A':
                return int(fields[9])
    return None


@root
@pytest.mark.parametrize('owner', ['', 'ListenOwner nobody:nogroup'])
def test_sighup_never_changes_a_file_planted_at_the_socket_path(tmp_path, procs, sharedDir,
                                                                owner):
    nobody = pwd.getpwnam('nobody')
    os.chown(sharedDir, nobody.pw_uid, nobody.pw_gid)       # the socket directory is theirs
    secret = tmp_path / 'secret'
    secret.write_text('root only\n')
    os.chmod(secret, 0o600)
    sock = os.path.join(sharedDir, 'app.sock')
    pm = Procman(tmp_path, procs, listen=False,
                 extra=f"Listen unix:{sock}:0666\n{owner}")
    pm.socket = sock
    pm.start()
    assert pm.request('/').status == 200
    # As nobody: move the socket away and plant a symlink to a root-only file.
    plant = procs(['setpriv', f'--reuid={nobody.pw_uid}', f'--regid={nobody.pw_gid}',
                   '--clear-groups', sys.executable, '-c',
                   f'import os; os.rename({sock!r}, {sock!r} + ".moved");'
                   f' os.symlink({str(secret)!r}, {sock!r})'])
    assert plant.wait(10) == 0
    pm.signal(signal.SIGHUP)
    # The reload's check finds the path is no socket of ours and refuses the
    # restart: the running manager keeps its own socket and touches nothing.
    waitFor(lambda: 'restart refused' in pm.log(), 30, message='the restart to be refused')
    assert 'is not a socket' in pm.log()
    st = os.stat(secret)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, 0, 0)
    pm.socket = sock + '.moved'         # the socket itself, under the name nobody gave it
    assert pm.request('/').status == 200
    pm.stop()
    assert os.path.islink(sock)         # not ours: left alone


@root
def test_sighup_applies_a_new_mode_and_owner_to_its_own_socket(tmp_path, procs):
    sock = str(tmp_path / 'app.sock')
    pm = Procman(tmp_path, procs, listen=False, extra=f"Listen unix:{sock}")
    pm.socket = sock
    pm.start()
    st = os.lstat(sock)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, 0, 0)
    edit(pm, f"Listen unix:{sock}", f"Listen unix:{sock}:0660\nListenOwner :www-data")
    pm.signal(signal.SIGHUP)
    restarted(pm)
    st = os.lstat(sock)
    www = grp.getgrnam('www-data').gr_gid
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o660, 0, www)
    assert pm.request('/').status == 200
    pm.stop()


@root
@pytest.mark.parametrize('owner, status', [('ListenOwner root:www-data', 200), ('', 502)])
def test_listen_owner_lets_nginx_as_www_data_in_through_a_0660_socket(
        tmp_path, procs, sharedDir, owner, status):
    sock = os.path.join(sharedDir, 'app.sock')
    pm = Procman(tmp_path, procs, listen=False, extra=f"Listen unix:{sock}:0660\n{owner}")
    pm.socket = sock
    pm.start()
    st = os.lstat(sock)
    group = grp.getgrnam('www-data').gr_gid if owner else 0
    assert (stat.S_ISSOCK(st.st_mode), stat.S_IMODE(st.st_mode)) == (True, 0o660)
    assert (st.st_uid, st.st_gid) == (0, group)
    assert os.listdir(sharedDir) == ['app.sock']        # no private directory left behind
    with WwwDataNginx(tmp_path, fastcgi_pass=f'unix:{sock}') as nginx:
        www = pwd.getpwnam('www-data').pw_uid
        waitFor(lambda: [p for p in nginx.workerPids() if _uid(p) == www], 10,
                 message="nginx's workers running as www-data")
        assert urlStatus(nginx.url + '/') == status
        if status == 502:
            assert 'Permission denied' in nginx.errorLogText()
    pm.stop()
    assert not os.path.exists(sock)


@root
def test_an_owner_the_manager_cannot_give_is_a_one_line_error(procs, sharedDir):
    nobody = pwd.getpwnam('nobody')
    os.chown(sharedDir, nobody.pw_uid, nobody.pw_gid)
    conf = os.path.join(sharedDir, 'app.conf')
    with open(conf, 'w') as f:
        f.write(f"Command CGI tests.procman.apps:hello\n"
                f"Listen unix:{sharedDir}/app.sock:0660\nListenOwner root:www-data\n")
    proc = procs(['setpriv', f'--reuid={nobody.pw_uid}', f'--regid={nobody.pw_gid}',
                  '--clear-groups', *peakArgv('procman', conf)], stderr=-1)
    assert proc.wait(30) == 2
    err = proc.popen.stderr.read().decode()
    assert len(err.strip().splitlines()) == 1, err
    assert f"{conf}:2: Listen unix:{sharedDir}/app.sock:0660: cannot give the socket" in err
    assert os.listdir(sharedDir) == ['app.conf']       # no socket, no private directory


def test_unknown_listen_owner_is_a_file_line_error(tmp_path, procs):
    pm = Procman(tmp_path, procs, listen=False, extra="ListenOwner no-such-user:www-data")
    proc = procs(peakArgv('procman', '--check', pm.path), env=pm.env,
                 stdout=-1, stderr=-1)
    out, err = proc.popen.communicate(timeout=30)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in err.decode()
    with open(pm.path) as f:
        lineno = f.read().splitlines().index("ListenOwner no-such-user:www-data") + 1
    assert f"{pm.path}:{lineno}: ListenOwner: no user named 'no-such-user'" in lines[0]


def test_the_address_binds_again_at_once_after_a_stop(tmp_path, procs):
    port = freePort()
    pm = Procman(tmp_path, procs, listen=False, extra=f"Listen 127.0.0.1:{port}", prefork=2)
    pm.start()
    for _ in range(20):     # connections the server closes: TIME_WAIT on its side
        assert httpStatus('127.0.0.1', port) == 200
    pm.stop()
    pm.start()
    assert httpStatus('127.0.0.1', port) == 200
    pm.stop()


def test_processes_the_app_starts_inherit_no_listening_socket(tmp_path, procs):
    port = freePort()
    pm = Procman(tmp_path, procs, command='CGI tests.process.sockets_apps:spawnSleeper',
                 listen=False, extra=f"Listen 127.0.0.1:{port}")
    pm.start()
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    conn.request('GET', '/')
    sleeper = int(conn.getresponse().read())
    conn.close()
    # A descriptor closed since the listing (the just-exec'd program's loader opens
    # and closes its libraries) is left out; an inherited listener would stay open.
    held = list(openFds(sleeper).values())
    assert not [link for link in held if link.startswith('socket:')], held
    with open(f'/proc/{sleeper}/environ', 'rb') as f:
        assert b'PEAK_LISTEN_FDS=' not in f.read()
    pm.stop()
    # Whatever became of the grandchild, nothing of the old pool holds the address.
    Listener.bind(parseAddress(f'127.0.0.1:{port}')).close()


class WwwDataNginx(Nginx):
    """The stock setup: the master as root, the workers as www-data."""

    def config(self):
        return super().config().replace('user root;', 'user www-data;')

    def workerPids(self):
        return childrenOf(self.proc.pid)


def _uid(pid):
    with open(f'/proc/{pid}/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith('Uid:'))


def urlStatus(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
