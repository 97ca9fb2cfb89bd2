"""The live-connection registry and the pre-fork check."""

import gc
import logging

from peak_lite.storage import SQLiteConnection, beforeFork, openConnections


def test_openConnections_tracks_open_ones_only(tmp_path, tm):
    a = SQLiteConnection(str(tmp_path / 'a.db'), transactionManager=tm)
    b = SQLiteConnection(str(tmp_path / 'b.db'), transactionManager=tm)
    assert openConnections() == []
    with tm:
        a.query("SELECT 1")
    assert openConnections() == [a]
    with tm:
        b.query("SELECT 1")
    assert openConnections() == [a, b]
    a.close()
    assert openConnections() == [b]
    del b
    gc.collect()
    assert openConnections() == []


def test_beforeFork_closes_and_warns_where_opened(tmp_path, tm, caplog):
    conn = SQLiteConnection.fromURL(None, f"sqlite:///{tmp_path}/left.db")
    conn.transaction_manager = tm
    with tm:
        conn.query("SELECT 1")   # opened here, and never closeASAP'd
    openedAt = conn.openedAt
    assert openedAt.startswith(__file__ + ':')
    with caplog.at_level(logging.WARNING, 'peak_lite.storage'):
        closed = beforeFork()
    assert closed == [conn]
    assert not conn.isOpen()
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert f"sqlite:///{tmp_path}/left.db" in message
    assert openedAt in message
    assert 'closeASAP' in message
    with tm:                      # still usable: reconnects
        assert conn.query("SELECT 2") == [(2,)]


def test_beforeFork_uses_the_given_logger(tmp_path, tm, caplog):
    conn = SQLiteConnection(str(tmp_path / 'x.db'), name='cache-db', transactionManager=tm)
    with tm:
        conn.query("SELECT 1")
    with caplog.at_level(logging.WARNING, 'procman.test'):
        assert beforeFork(log=logging.getLogger('procman.test')) == [conn]
    assert [r.name for r in caplog.records] == ['procman.test']
    assert 'cache-db' in caplog.records[0].getMessage()
    assert beforeFork() == []
