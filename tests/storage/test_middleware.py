"""TransactionMiddleware, in process and through a real server that gets SIGKILLed."""

import http.client
import signal
import sqlite3
import subprocess
import sys

import psycopg
import pytest
import transaction

from peak_lite.storage import SQLiteConnection, TransactionMiddleware
from tests.storage.txn_app import makeApp


@pytest.fixture
def sqliteURL(tmp_path):
    path = tmp_path / 'app.db'
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("CREATE TABLE t (x integer PRIMARY KEY)")
    raw.close()
    return f"sqlite:///{path}"


def sqliteRows(url):
    raw = sqlite3.connect(url[len('sqlite://'):])
    try:
        return [x for (x,) in raw.execute("SELECT x FROM t ORDER BY x")]
    finally:
        raw.close()


class StartResponse:
    def __init__(self):
        self.calls = []

    def __call__(self, status, headers, exc_info=None):
        self.calls.append((status, headers))
        return lambda data: None


def call(app, path):
    start = StartResponse()
    body = b''.join(app({'PATH_INFO': path, 'REQUEST_METHOD': 'POST'}, start))
    return start.calls, body


def test_commits_before_answering(sqliteURL):
    seen = []

    def app(environ, start_response):
        db.execute("INSERT INTO t VALUES (1)")
        start_response('200 OK', [])
        yield b'a'
        seen.append(sqliteRows(sqliteURL))   # still inside the transaction
        yield b'b'

    db = SQLiteConnection.fromURL(None, sqliteURL)
    start = StartResponse()
    mw = TransactionMiddleware(app)

    def checkingStart(status, headers, exc_info=None):
        seen.append(sqliteRows(sqliteURL))   # the server is told only after commit
        return start(status, headers, exc_info)

    body = mw({'PATH_INFO': '/'}, checkingStart)
    assert b''.join(body) == b'ab'
    assert seen == [[], [1]]
    db.close()


def test_exception_aborts_and_propagates(sqliteURL):
    app = makeApp(sqliteURL)
    with pytest.raises(RuntimeError, match='the application failed'):
        call(app, '/raise/1')
    assert sqliteRows(sqliteURL) == []


def test_5xx_aborts_but_answers(sqliteURL):
    calls, body = call(makeApp(sqliteURL), '/fail/1')
    assert calls[0][0].startswith('503') and body == b'fail 1\n'
    assert sqliteRows(sqliteURL) == []


def test_doomed_transaction_is_aborted(sqliteURL):
    calls, body = call(makeApp(sqliteURL), '/doom/1')
    assert calls[0][0] == '200 OK'
    assert sqliteRows(sqliteURL) == []
    calls, body = call(makeApp(sqliteURL), '/write/2')
    assert sqliteRows(sqliteURL) == [2]


def test_failed_commit_answers_500(sqliteURL, caplog):
    def app(environ, start_response):
        db.execute("INSERT INTO t VALUES (1)")
        db.close()      # the write is lost: committing must not claim success
        db.execute("INSERT INTO t VALUES (2)")
        start_response('200 OK', [])
        return [b'ok']

    db = SQLiteConnection.fromURL(None, sqliteURL)
    calls, body = call(TransactionMiddleware(app), '/')
    assert calls[0][0].startswith('500')
    assert sqliteRows(sqliteURL) == []
    assert 'commit failed' in caplog.text
    db.close()


def test_uses_the_given_manager(sqliteURL):
    tm = transaction.TransactionManager()
    db = SQLiteConnection.fromURL(None, sqliteURL)
    db.transaction_manager = tm

    def app(environ, start_response):
        assert environ['transaction.manager'] is tm
        db.execute("INSERT INTO t VALUES (5)")
        start_response('201 Created', [])
        return []

    calls, _ = call(TransactionMiddleware(app, manager=tm), '/')
    assert calls[0][0] == '201 Created' and sqliteRows(sqliteURL) == [5]
    db.close()


def startServer(procs, url):
    proc = procs([sys.executable, '-m', 'tests.storage.txn_app', url],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.popen.stdout.readline()
    assert line.strip().isdigit(), proc.popen.stderr.read()
    return proc, int(line)


def post(port, path):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
    try:
        conn.request('POST', path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def acknowledgedWritesSurviveSIGKILL(procs, url, rowsOf):
    proc, port = startServer(procs, url)
    assert post(port, '/write/1') == (200, b'write 1\n')
    proc.signal(signal.SIGKILL)           # right after the acknowledgement
    proc.wait()
    assert rowsOf(url) == [1]
    proc, port = startServer(procs, url)
    assert post(port, '/raise/2')[0] == 500
    assert post(port, '/fail/3')[0] == 503
    proc.signal(signal.SIGKILL)
    proc.wait()
    assert rowsOf(url) == [1]


def test_sqlite_acknowledged_write_is_durable(procs, sqliteURL):
    acknowledgedWritesSurviveSIGKILL(procs, sqliteURL, sqliteRows)


@pytest.mark.postgres
def test_postgresql_acknowledged_write_is_durable(procs, pgDb):
    with psycopg.connect(pgDb, autocommit=True) as raw:
        raw.execute("CREATE TABLE t (x integer PRIMARY KEY)")

    def rows(url):
        with psycopg.connect(url) as raw:
            return [x for (x,) in raw.execute("SELECT x FROM t ORDER BY x")]

    acknowledgedWritesSurviveSIGKILL(procs, pgDb, rows)
