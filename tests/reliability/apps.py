"""WSGI apps the reliability tests run under procman.

- ``sleepy``: ``/?ms=M&id=N`` sleeps M milliseconds, then answers ``pid=... id=N``.
- ``ledger``: ``POST /?id=N&ms=M`` sleeps M ms, inserts row N into table
  ``ledger`` of the PostgreSQL database named by ``$RELIABILITY_DB_URL``, in
  the request's own transaction (TransactionMiddleware), and answers 200.
- ``measure``: reads the whole request body in 64 KB pieces and answers its
  size with this child's VmRSS and VmHWM (peak RSS) in kB.
"""

import os
import time
import urllib.parse

from peak_lite.storage import PostgreSQLConnection, TransactionMiddleware

DB_ENV = 'RELIABILITY_DB_URL'


def _query(environ):
    return dict(urllib.parse.parse_qsl(environ.get('QUERY_STRING', '')))


def _answer(start_response, text, status='200 OK'):
    body = text.encode()
    start_response(status, [('Content-Type', 'text/plain'),
                            ('Content-Length', str(len(body)))])
    return [body]


def sleepy(environ, start_response):
    q = _query(environ)
    time.sleep(float(q.get('ms', 0)) / 1000)
    return _answer(start_response, f"pid={os.getpid()} id={q.get('id', '')}\n")


def _ledgerApp():
    db = PostgreSQLConnection.fromURL(None, os.environ[DB_ENV])

    def app(environ, start_response):
        q = _query(environ)
        time.sleep(float(q.get('ms', 0)) / 1000)
        db.execute("INSERT INTO ledger (id, pid) VALUES (%s, %s)", (int(q['id']), os.getpid()))
        return _answer(start_response, f"row {q['id']}\n")

    # The middleware commits after the app returned its whole body and just
    # before it hands status and body to the gateway: the commit is the last
    # thing that happens before the response bytes go out.
    return TransactionMiddleware(app)


# Built when procman preloads this module (the test sets the URL first), so
# the connection object exists before the fork: each child detaches it and
# connects on its first request.
ledger = _ledgerApp() if DB_ENV in os.environ else None


def _status(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return -1


def measure(environ, start_response):
    stream = environ['wsgi.input']
    left = int(environ.get('CONTENT_LENGTH') or 0)
    seen = 0
    while left > 0:
        chunk = stream.read(min(65536, left))
        if not chunk:
            break
        seen += len(chunk)
        left -= len(chunk)
    return _answer(start_response,
                   f"size={seen} rss={_status('VmRSS')} hwm={_status('VmHWM')}\n")
