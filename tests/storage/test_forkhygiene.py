"""Fork hygiene: inheritedSockets() on real sockets."""

import socket

import pytest

from peak_lite.storage import PostgreSQLConnection, inheritedSockets


def fds(found):
    return {fd for fd, _ in found}


def test_lists_tcp_listener_and_connections_but_not_excluded_or_socketpairs(tmp_path):
    with socket.socket() as listener, socket.socket() as client, \
            socket.socket(socket.AF_UNIX) as named:
        listener.bind(('127.0.0.1', 0))
        listener.listen()
        client.connect(listener.getsockname())
        server, _ = listener.accept()
        named.bind(str(tmp_path / 'sock'))
        a, b = socket.socketpair()
        with server, a, b:
            found = dict(inheritedSockets())
            host, port = listener.getsockname()
            expected = f"fd {listener.fileno()}: tcp {host}:{port} (listening)"
            assert found[listener.fileno()] == expected
            assert found[client.fileno()].endswith(f"-> {host}:{port}")
            assert server.fileno() in found
            assert str(tmp_path / 'sock') in found[named.fileno()]
            assert a.fileno() not in found and b.fileno() not in found
            rest = fds(inheritedSockets(exclude=[listener.fileno()]))
            assert listener.fileno() not in rest and client.fileno() in rest


def test_files_and_pipes_are_not_sockets(tmp_path):
    with open(tmp_path / 'f', 'w') as f:
        assert f.fileno() not in fds(inheritedSockets())


@pytest.mark.postgres
def test_an_open_database_connection_shows_up(pgDb, tm, postgresServer):
    conn = PostgreSQLConnection(pgDb, transactionManager=tm)
    with tm:
        conn.query("SELECT 1")
        fd = conn.connection.fileno()
    found = dict(inheritedSockets())
    assert postgresServer.socketDir in found[fd]
    conn.close()
    assert fd not in fds(inheritedSockets())
