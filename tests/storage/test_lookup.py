"""Connections found by URL through binding.lookupComponent and the built-in schemes."""

import pytest

from peak_lite import binding, config
from peak_lite.storage import InvalidURLError, PostgreSQLConnection, SQLiteConnection


@pytest.fixture
def root():
    return config.makeRoot()


def test_sqlite_url_lookup(root, tmp_path, tm):
    conn = binding.lookupComponent(root, f"sqlite:///{tmp_path}/looked-up.db")
    assert isinstance(conn, SQLiteConnection)
    assert conn.parentComponent is root
    assert conn.address == f"{tmp_path}/looked-up.db"
    conn.transaction_manager = tm
    with tm:
        assert conn.query("SELECT 1") == [(1,)]
    conn.close()


def test_sqlite_url_forms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert SQLiteConnection.fromURL(None, 'sqlite:///abs/x.db').address == '/abs/x.db'
    assert SQLiteConnection.fromURL(None, 'sqlite:////abs/x.db').address == '/abs/x.db'
    assert SQLiteConnection.fromURL(None, 'sqlite://localhost/abs/x.db').address == '/abs/x.db'
    assert SQLiteConnection.fromURL(None, 'sqlite:rel/x.db').address == f"{tmp_path}/rel/x.db"
    assert SQLiteConnection.fromURL(None, 'sqlite::memory:').address == ':memory:'
    slow = SQLiteConnection.fromURL(None, 'sqlite:///x.db?timeout=30&begin=immediate')
    assert slow.driverOptions['timeout'] == 30.0 and slow.beginMode == 'IMMEDIATE'
    for bad, why in [('sqlite://otherhost/x.db', 'names a local file'),
                     ('sqlite:', 'names no file'),
                     ('sqlite:///x.db?timeout=soon', 'not a number'),
                     ('sqlite:///x.db?mode=ro', 'unknown sqlite URL parameter'),
                     ('sqlite:///x.db?begin=later', 'begin mode')]:
        with pytest.raises(InvalidURLError, match=why):
            SQLiteConnection.fromURL(None, bad)


def test_memory_database_is_private_to_each_connection(tm):
    conn = SQLiteConnection.fromURL(None, 'sqlite::memory:')
    conn.transaction_manager = tm
    with tm:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    with tm:
        assert conn.query("SELECT count(*) FROM sqlite_master") == [(0,)]
    conn.close()


@pytest.mark.postgres
def test_postgresql_url_lookup(root, pgDb, tm):
    conn = binding.lookupComponent(root, pgDb)
    assert isinstance(conn, PostgreSQLConnection)
    assert conn.parentComponent is root
    conn.transaction_manager = tm
    with tm:
        assert conn.query("SELECT current_database()")[0][0].startswith('test_')
    conn.close()
