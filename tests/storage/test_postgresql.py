"""PostgreSQLConnection against the real server the test session starts."""

import logging

import psycopg
import pytest
from transaction.interfaces import IDataManager
from zope.interface.verify import verifyClass, verifyObject

from peak_lite.storage import (
    IConnectionFactory, IManagedConnection, InvalidURLError, PostgreSQLConnection,
    StorageError, TransactionFailedError)

pytestmark = pytest.mark.postgres


@pytest.fixture
def table(pgDb):
    with psycopg.connect(pgDb, autocommit=True) as raw:
        raw.execute("CREATE TABLE t (x integer PRIMARY KEY)")
    return pgDb


def rows(url):
    with psycopg.connect(url) as raw:
        return [x for (x,) in raw.execute("SELECT x FROM t ORDER BY x")]


def backendPid(conn):
    return conn.query("SELECT pg_backend_pid()")[0][0]


def test_interfaces(pgDb, tm):
    conn = PostgreSQLConnection.fromURL(None, pgDb)
    assert verifyObject(IDataManager, conn)
    assert verifyObject(IManagedConnection, conn)
    assert verifyClass(IManagedConnection, PostgreSQLConnection)
    assert verifyObject(IConnectionFactory, PostgreSQLConnection)


def test_fromURL_checks_and_redacts():
    conn = PostgreSQLConnection.fromURL(None, 'postgresql://app:s3cret@db.example:5432/app')
    assert 's3cret' not in conn.name and 's3cret' not in repr(conn)
    assert conn.address == 'postgresql://app:s3cret@db.example:5432/app'
    with pytest.raises(InvalidURLError, match='not a postgresql://'):
        PostgreSQLConnection.fromURL(None, 'mysql://x/y')
    with pytest.raises(InvalidURLError, match='not a valid libpq URL'):
        PostgreSQLConnection.fromURL(None, 'postgresql://h/db?nosuchoption=1')


def test_commit_abort_and_closeASAP(table, tm):
    conn = PostgreSQLConnection.fromURL(None, table)
    conn.transaction_manager = tm
    with tm:
        conn.execute("INSERT INTO t VALUES (%s)", (1,))
        assert rows(table) == []
    assert rows(table) == [1]
    first = backendPid(conn)
    tm.abort()
    for value, end in [(2, 'commit'), (3, 'abort')]:
        tm.begin()
        conn.execute("INSERT INTO t VALUES (%s)", (value,))
        conn.closeASAP()
        assert conn.isOpen()
        getattr(tm, end)()
        assert not conn.isOpen()
    assert rows(table) == [1, 2]
    with tm:
        assert backendPid(conn) != first      # reconnected
    conn.closeASAP()                          # outside a transaction: now
    assert not conn.isOpen()


def test_driver_error_gives_a_fresh_connection(table, tm):
    conn = PostgreSQLConnection(table, transactionManager=tm)
    tm.begin()
    first = backendPid(conn)
    with pytest.raises(psycopg.errors.UndefinedTable):
        conn.execute("SELECT * FROM no_such_table")
    with pytest.raises(TransactionFailedError, match='a statement failed earlier'):
        tm.commit()
    tm.abort()
    assert not conn.isOpen()
    with tm:
        assert backendPid(conn) != first
        conn.execute("INSERT INTO t VALUES (1)")
    assert rows(table) == [1]


def test_server_side_disconnect_is_recovered(table, tm, postgresServer, caplog):
    conn = PostgreSQLConnection(table, transactionManager=tm)
    tm.begin()
    victim = backendPid(conn)
    with psycopg.connect(postgresServer.dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (victim,))
    with pytest.raises(psycopg.OperationalError):
        conn.query("SELECT 1")
    with caplog.at_level(logging.WARNING, 'peak_lite.storage'):
        tm.abort()
    assert not conn.isOpen()
    with tm:
        assert backendPid(conn) != victim


def test_connect_failure_is_one_clear_line(postgresServer, tm):
    conn = PostgreSQLConnection(postgresServer.urlFor('no_such_db'), transactionManager=tm)
    with pytest.raises(StorageError, match=r'cannot open database connection .*no_such_db') as info:
        conn.query("SELECT 1")
    assert '\n' not in str(info.value)
    assert not conn.isOpen()


def test_two_phase_commit(table, tm):
    conn = PostgreSQLConnection(table, transactionManager=tm, twoPhase=True)
    with tm:
        conn.execute("INSERT INTO t VALUES (1)")
    tm.begin()
    conn.execute("INSERT INTO t VALUES (2)")
    tm.abort()
    assert rows(table) == [1]
    with psycopg.connect(table) as raw:
        assert raw.execute("SELECT count(*) FROM pg_prepared_xacts").fetchone() == (0,)


class VotesNo:
    """A data manager that votes after the database and refuses."""

    def __init__(self, tm):
        self.transaction_manager = tm
        self.aborted = False

    def sortKey(self):
        return '~~~ votes last'

    def abort(self, txn):
        self.aborted = True

    tpc_abort = abort

    def tpc_begin(self, txn):
        pass

    def commit(self, txn):
        pass

    def tpc_vote(self, txn):
        raise RuntimeError("no")

    def tpc_finish(self, txn):
        raise AssertionError("never reached")


def test_two_phase_commit_rolls_back_a_prepared_transaction(table, tm, caplog):
    conn = PostgreSQLConnection(table, transactionManager=tm, twoPhase=True)
    tm.begin()
    conn.execute("INSERT INTO t VALUES (1)")
    other = VotesNo(tm)
    tm.get().join(other)
    with pytest.raises(RuntimeError, match='no'):
        tm.commit()
    tm.abort()
    assert other.aborted
    assert rows(table) == []
    with psycopg.connect(table) as raw:
        assert raw.execute("SELECT count(*) FROM pg_prepared_xacts").fetchone() == (0,)
    with tm:                                  # the connection is still usable
        conn.execute("INSERT INTO t VALUES (2)")
    assert rows(table) == [2]


def test_single_phase_votes_late(table, tm):
    conn = PostgreSQLConnection(table, transactionManager=tm)
    assert conn.sortKey() > 'zzz' and conn.sortKey() < VotesNo(tm).sortKey()


def test_autocommit_without_a_transaction(table, explicitTM):
    conn = PostgreSQLConnection(table, transactionManager=explicitTM)
    conn.execute("INSERT INTO t VALUES (1)")
    assert rows(table) == [1]
    assert conn.query("SELECT x FROM t") == [(1,)]
    assert conn.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    conn.close()
