"""Fork hygiene: children never share a database session with their parent."""

import sqlite3

import psycopg
import pytest

from peak_lite.storage import (
    PostgreSQLConnection, SQLiteConnection, beforeFork, openConnections)
from tests.storage.forking import inChild


def backendPid(conn):
    return conn.query("SELECT pg_backend_pid()")[0][0]


@pytest.mark.postgres
def test_child_reconnects_and_parent_session_survives(pgDb, tm, postgresServer):
    conn = PostgreSQLConnection(pgDb, transactionManager=tm)
    with tm:
        parentPid = backendPid(conn)
    assert conn.isOpen()

    def child():
        wasOpen = conn.isOpen()
        with tm:
            pid = backendPid(conn)
        conn.close()
        return {'wasOpen': wasOpen, 'pid': pid}

    seen = inChild(child)
    assert seen['wasOpen'] is False
    assert seen['pid'] != parentPid
    # Had the child sent Terminate (or anything) on the shared socket, this
    # session would be gone or out of step.
    with tm:
        assert backendPid(conn) == parentPid
        assert conn.query("SELECT 41 + 1") == [(42,)]
    with psycopg.connect(postgresServer.dsn) as admin:
        alive = admin.execute("SELECT pid FROM pg_stat_activity WHERE pid = %s",
                              (parentPid,)).fetchall()
    assert alive == [(parentPid,)]


@pytest.mark.postgres
def test_child_detaches_even_mid_transaction(pgDb, tm):
    conn = PostgreSQLConnection(pgDb, transactionManager=tm)
    tm.begin()
    conn.execute("CREATE TABLE t (x integer)")
    conn.execute("INSERT INTO t VALUES (1)")
    parentPid = backendPid(conn)

    def child():
        with tm:
            pid = backendPid(conn)
            # The parent's uncommitted table is invisible from a new session.
            tables = conn.query("SELECT count(*) FROM pg_tables WHERE tablename = 't'")
        conn.close()
        return [pid, tables[0][0]]

    pid, tables = inChild(child)
    assert pid != parentPid and tables == 0
    conn.execute("INSERT INTO t VALUES (2)")
    tm.commit()
    with tm:
        assert conn.query("SELECT x FROM t ORDER BY x") == [(1,), (2,)]


@pytest.mark.postgres
def test_closeASAP_before_fork_leaves_nothing_open(pgDb, tm):
    conn = PostgreSQLConnection(pgDb, transactionManager=tm)
    with tm:                          # the preload transaction
        parentPid = backendPid(conn)
        conn.closeASAP()
    assert not conn.isOpen()
    assert conn not in openConnections()
    assert beforeFork() == []

    def child():
        with tm:
            pid = backendPid(conn)
        conn.close()
        return pid

    assert inChild(child) != parentPid
    with tm:
        assert backendPid(conn) != parentPid   # the parent reconnects too


def test_sqlite_child_leaves_the_parent_transaction_alone(tmp_path, tm):
    path = str(tmp_path / 'fork.db')
    conn = SQLiteConnection(path, transactionManager=tm)
    with tm:
        conn.execute("CREATE TABLE t (x integer)")
    tm.begin()
    conn.execute("INSERT INTO t VALUES (1)")
    parentRaw = conn.connection

    def child():
        wasOpen = conn.isOpen()
        with tm:
            count = conn.query("SELECT count(*) FROM t")[0][0]
        conn.close()
        return [wasOpen, count]

    assert inChild(child) == [False, 0]
    assert conn.connection is parentRaw
    conn.execute("INSERT INTO t VALUES (2)")
    tm.commit()
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT count(*) FROM t").fetchone() == (2,)
    finally:
        raw.close()
