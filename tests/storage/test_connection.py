"""ManagedConnection's transaction protocol, exercised on real SQLite files."""

import logging
import sqlite3

import pytest
import transaction
from transaction.interfaces import IDataManager
from zope.interface.verify import verifyClass, verifyObject

from peak_lite.storage import (
    ConnectionLostError, IConnectionFactory, IManagedConnection, ManagedConnection,
    SQLiteConnection)


@pytest.fixture
def dbPath(tmp_path):
    path = str(tmp_path / 'test.db')
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    raw.close()
    return path


def rows(path):
    raw = sqlite3.connect(path)
    try:
        return [x for (x,) in raw.execute("SELECT x FROM t ORDER BY x")]
    finally:
        raw.close()


def test_interfaces(dbPath, tm):
    conn = SQLiteConnection(dbPath, transactionManager=tm)
    assert verifyObject(IDataManager, conn)
    assert verifyObject(IManagedConnection, conn)
    assert verifyClass(IManagedConnection, ManagedConnection)
    assert verifyClass(IManagedConnection, SQLiteConnection)
    assert verifyObject(IConnectionFactory, SQLiteConnection)


def test_connects_lazily_and_records_where(dbPath, tm):
    conn = SQLiteConnection(dbPath, transactionManager=tm)
    assert not conn.isOpen() and conn.openedAt is None
    assert conn.query("SELECT 1") == [(1,)]
    assert conn.isOpen()
    assert conn.openedAt.startswith(__file__ + ':')
    assert 'test_connects_lazily_and_records_where' in conn.openedAt
    tm.abort()


def test_commits_and_aborts_with_the_transaction(dbPath, tm):
    conn = SQLiteConnection(dbPath, transactionManager=tm)
    with tm:
        conn.execute("INSERT INTO t VALUES (?)", (1,))
        assert rows(dbPath) == []     # not visible before commit
    assert rows(dbPath) == [1]
    tm.begin()
    conn.execute("INSERT INTO t VALUES (?)", (2,))
    tm.abort()
    assert rows(dbPath) == [1]
    assert conn.isOpen()              # a plain commit or abort keeps it open


def test_executemany_and_cursor(dbPath, tm):
    conn = SQLiteConnection(dbPath, transactionManager=tm)
    with tm:
        conn.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM t")
        assert cur.fetchone() == (2,)
        assert conn.connection.in_transaction
    assert rows(dbPath) == [1, 2]


@pytest.mark.parametrize('end', ['commit', 'abort'])
def test_closeASAP_inside_a_transaction_closes_at_its_end(dbPath, tm, end):
    conn = SQLiteConnection(dbPath, transactionManager=tm)
    tm.begin()
    conn.execute("INSERT INTO t VALUES (1)")
    conn.closeASAP()
    assert conn.isOpen()
    conn.execute("INSERT INTO t VALUES (2)")   # still usable until the end
    getattr(tm, end)()
    assert not conn.isOpen()
    assert rows(dbPath) == ([1, 2] if end == 'commit' else [])
    with tm:                                   # the next use reconnects
        conn.execute("INSERT INTO t VALUES (3)")
    assert conn.isOpen()
    assert rows(dbPath) == ([1, 2, 3] if end == 'commit' else [3])


def test_closeASAP_before_first_use_closes_at_the_end_too(dbPath, tm):
    conn = SQLiteConnection(dbPath, transactionManager=tm)
    with tm:
        conn.closeASAP()
        assert conn.query("SELECT count(*) FROM t") == [(0,)]
    assert not conn.isOpen()
    with tm:                                   # a later transaction is not affected
        conn.query("SELECT 1")
    assert conn.isOpen()


@pytest.mark.parametrize('explicit', [True, False])
def test_closeASAP_outside_a_transaction_closes_now(dbPath, explicit):
    tm = transaction.TransactionManager(explicit=explicit)
    conn = SQLiteConnection(dbPath, transactionManager=tm)
    with tm:
        conn.execute("INSERT INTO t VALUES (1)")
    assert conn.isOpen()
    conn.closeASAP()
    assert not conn.isOpen()
    with tm:
        assert conn.query("SELECT x FROM t") == [(1,)]
    assert conn.isOpen()


def test_close_now_and_reconnect(dbPath, tm):
    conn = SQLiteConnection(dbPath, transactionManager=tm)
    first = conn.connection
    tm.abort()
    conn.close()
    assert not conn.isOpen()
    assert conn.connection is not first
    tm.abort()


def test_close_during_a_transaction_refuses_to_commit(dbPath, tm, caplog):
    conn = SQLiteConnection(dbPath, transactionManager=tm)
    tm.begin()
    conn.execute("INSERT INTO t VALUES (1)")
    conn.close()
    conn.execute("INSERT INTO t VALUES (2)")   # reopens, but the first write is gone
    with caplog.at_level(logging.CRITICAL, 'txn'):
        with pytest.raises(ConnectionLostError, match='was closed during this transaction'):
            tm.commit()
    tm.abort()
    assert rows(dbPath) == []


def test_driver_error_gives_a_fresh_connection_next_transaction(dbPath, tm):
    conn = SQLiteConnection(dbPath, transactionManager=tm)
    tm.begin()
    first = conn.connection
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("INSERT INTO no_such_table VALUES (1)")
    assert conn.isOpen()                 # closes at the end of the transaction...
    tm.abort()
    assert not conn.isOpen()
    with tm:                             # ...and the next one gets a new connection
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.connection is not first
    assert rows(dbPath) == [1]


def test_driver_error_outside_a_transaction_closes_at_once(dbPath, explicitTM):
    conn = SQLiteConnection(dbPath, transactionManager=explicitTM)
    conn.execute("INSERT INTO t VALUES (1)")      # autocommit: no transaction
    assert rows(dbPath) == [1]
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO t VALUES (1)")
    assert not conn.isOpen()
    assert conn.query("SELECT count(*) FROM t") == [(1,)]


def test_failed_commit_closes_and_aborts(tmp_path, explicitTM):
    tm = explicitTM
    path = str(tmp_path / 'deferred.db')
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE p (id INTEGER PRIMARY KEY)")
        raw.execute("CREATE TABLE c (p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)")
    raw.close()
    conn = SQLiteConnection(path, transactionManager=tm)
    conn.execute("PRAGMA foreign_keys = ON")       # outside a transaction, as SQLite requires
    tm.begin()
    conn.execute("INSERT INTO c VALUES (42)")      # checked only at COMMIT
    with pytest.raises(sqlite3.IntegrityError):
        tm.commit()
    tm.abort()
    assert not conn.isOpen()


def test_sortKey_is_a_distinct_string(dbPath):
    a = SQLiteConnection(dbPath)
    b = SQLiteConnection(dbPath)
    assert isinstance(a.sortKey(), str) and a.sortKey() != b.sortKey()


def test_default_manager_is_the_thread_manager(dbPath):
    conn = SQLiteConnection(dbPath)
    assert conn.transaction_manager is transaction.manager
    with transaction.manager:
        conn.execute("INSERT INTO t VALUES (7)")
        conn.closeASAP()
    assert not conn.isOpen()
    assert rows(dbPath) == [7]
