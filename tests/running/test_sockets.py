"""The one socket module: specs, owners, binding, stale files and full-address matching,
on real sockets."""

import grp
import os
import pwd
import socket
import stat

import pytest
from zope.interface.verify import verifyClass, verifyObject

from peak_lite.running.interfaces import (
    IListener, IListeners, ISocketAddress, InvocationError)
from peak_lite.running.sockets import (
    DEFAULT_SOCKET_MODE, Listener, Listeners, SocketAddress, SocketError, parseAddress,
    parseOwner)


@pytest.mark.parametrize('spec, expected', [
    ('unix:/run/app.sock', SocketAddress('unix', path='/run/app.sock', mode=0o600)),
    ('unix:/run/app.sock:660', SocketAddress('unix', path='/run/app.sock', mode=0o660)),
    ('127.0.0.1:9000', SocketAddress('tcp', host='127.0.0.1', port=9000, family='inet')),
    (':9000', SocketAddress('tcp', host='0.0.0.0', port=9000, family='inet')),
    ('[::1]:9000', SocketAddress('tcp', host='::1', port=9000, family='inet6')),
    ('fd:3', SocketAddress('fd', fd=3)),
])
def test_one_parser_for_every_spec(spec, expected):
    address = parseAddress(spec)
    assert address == expected
    assert verifyObject(ISocketAddress, address) and verifyClass(ISocketAddress, SocketAddress)
    assert parseAddress(str(address)) == address


def test_addresses_know_their_family_and_bind_address():
    assert (parseAddress('[::1]:80').socketFamily, parseAddress('[::1]:80').sockaddr) == (
        socket.AF_INET6, ('::1', 80))
    assert parseAddress('unix:/a').sockaddr == '/a'
    assert DEFAULT_SOCKET_MODE == 0o600


def test_owners():
    www = grp.getgrnam('www-data').gr_gid
    nobody = pwd.getpwnam('nobody').pw_uid
    assert parseOwner('root:www-data') == (0, www)
    assert parseOwner(':www-data') == (-1, www)
    assert parseOwner('nobody') == (nobody, -1)
    assert parseOwner('4321:8765') == (4321, 8765)


@pytest.mark.parametrize('text, message', [
    ('', 'expected USER'), (':', 'expected USER'), ('root:', 'expected USER'),
    ('a b', 'expected USER'), ('no-such-user', "no user named 'no-such-user'"),
    ('root:no-such-group', "no group named 'no-such-group'"),
    ('4294967295', 'not a valid user id'),
])
def test_bad_owners_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parseOwner(text)


def test_socket_errors_are_invocation_errors():
    assert issubclass(SocketError, InvocationError)


def test_a_unix_socket_has_its_mode_before_it_appears_and_no_private_dir_is_left(tmp_path):
    path = str(tmp_path / 'app.sock')
    listener = Listener.bind(parseAddress(f'unix:{path}:0640'))
    try:
        st = os.lstat(path)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640
        assert listener.fileId == (st.st_dev, st.st_ino) and listener.ownsFile()
        assert verifyObject(IListener, listener)
        assert verifyObject(IListeners, Listeners([listener]))
        assert os.listdir(tmp_path) == ['app.sock']
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
    finally:
        listener.close()
    assert not os.path.exists(path)


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file away needs root")
def test_a_unix_socket_gets_its_owner(tmp_path):
    path = str(tmp_path / 'app.sock')
    www = grp.getgrnam('www-data').gr_gid
    listener = Listener.bind(parseAddress(f'unix:{path}:0660'), owner=(-1, www))
    try:
        st = os.lstat(path)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, www, 0o660)
    finally:
        listener.close()


def test_a_stale_socket_file_is_replaced_a_live_one_and_other_files_refused(tmp_path):
    path = str(tmp_path / 'app.sock')
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()                                   # the file stays; nobody listens
    listener = Listener.bind(parseAddress(f'unix:{path}'))
    try:
        with pytest.raises(SocketError, match='another process is listening there'):
            Listener.bind(parseAddress(f'unix:{path}'))
        assert listener.ownsFile()                  # the live socket was left in place
    finally:
        listener.close()
    (tmp_path / 'plain').write_text('data')
    link = tmp_path / 'link'
    link.symlink_to(tmp_path / 'plain')
    for other in ('plain', 'link'):
        with pytest.raises(SocketError, match='exists and is not a socket'):
            Listener.bind(parseAddress(f"unix:{tmp_path / other}"))
    assert (tmp_path / 'plain').read_text() == 'data' and link.is_symlink()


def test_closing_never_removes_a_socket_file_that_is_no_longer_ours(tmp_path):
    path = str(tmp_path / 'app.sock')
    first = Listeners([Listener.bind(parseAddress(f'unix:{path}'))])
    os.unlink(path)                                 # someone else took the path over
    with Listener.bind(parseAddress(f'unix:{path}')).sock as successor:
        first.close()
        assert os.path.exists(path)
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
            conn, _ = successor.accept()
            conn.close()


def test_a_carried_socket_matches_only_its_full_address():
    listener = Listener.bind(parseAddress('127.0.0.1:0'))
    port = listener.sock.getsockname()[1]
    try:
        for spec, same in [(f'127.0.0.1:{port}', True), (f'localhost:{port}', True),
                           ('127.0.0.1:0', True), (f'127.0.0.2:{port}', False),
                           (f'[::1]:{port}', False), (f'127.0.0.1:{port + 1}', False),
                           (f'unix:/tmp/{port}', False)]:
            assert Listener(listener.sock).matches(parseAddress(spec)) == same, spec
    finally:
        listener.close()


def test_a_tcp_address_binds_again_at_once(tmp_path):
    address = parseAddress('127.0.0.1:0')
    listener = Listener.bind(address)
    address = parseAddress(f'127.0.0.1:{listener.sock.getsockname()[1]}')
    with socket.create_connection(listener.sock.getsockname()) as client:
        conn, _ = listener.sock.accept()
        conn.close()                                # the server closes first: TIME_WAIT
        client.recv(1)
    listener.close()
    Listener.bind(address).close()


def test_a_descriptor_that_is_not_listening_is_refused():
    with socket.socket() as s:
        with pytest.raises(SocketError, match='not an inherited listening socket'):
            Listener.bind(parseAddress(f'fd:{s.fileno()}'))


def test_carried_sockets_are_adopted_by_full_address_and_the_rest_closed(tmp_path):
    unix = parseAddress(f"unix:{tmp_path / 'a.sock'}")
    tcp = parseAddress('127.0.0.1:0')
    first = Listeners([Listener.bind(unix), Listener.bind(tcp)])
    port = first.sockets[1].getsockname()[1]
    environ = {}
    first.carryAcrossExec(environ)       # what a restart's exec keeps open
    fds = first.fds()
    for sock in first.sockets:           # as exec would: the descriptors stay, not the objects
        sock.detach()
    moved = parseAddress(f'127.0.0.2:{port}')
    second = Listeners.open([unix, moved], environ)
    try:
        assert 'PEAK_PROCMAN_FDS' not in environ
        assert second.fds()[0] == fds[0]                    # the same unix socket
        assert second.listeners[0].fileId == first.listeners[0].fileId
        assert second.sockets[1].getsockname() == ('127.0.0.2', port)
        with pytest.raises(ConnectionRefusedError):         # the old address was closed
            socket.create_connection(('127.0.0.1', port), timeout=5).close()
        assert second.describe() == f"unix:{unix.path}, 127.0.0.2:{port}"
    finally:
        second.close()
    assert not os.path.exists(unix.path)


def test_sockets_carried_by_an_earlier_version_are_matched_by_their_name():
    listener = Listener.bind(parseAddress('127.0.0.1:0'))
    port = listener.sock.getsockname()[1]
    os.set_inheritable(listener.fileno(), True)
    environ = {'PEAK_PROCMAN_FDS': str(listener.fileno())}
    adopted = Listeners.open([parseAddress(f'127.0.0.1:{port}')], environ)
    try:
        assert adopted.fds() == [listener.fileno()]
    finally:
        adopted.close()
        listener.sock.detach()
