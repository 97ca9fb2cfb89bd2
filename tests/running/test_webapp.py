"""WebApp: routes, mounts, 404/405 and one committed transaction per request."""

import io
import sqlite3

import pytest
from zope.interface.verify import verifyObject

from peak_lite import binding
from peak_lite.running.assembly import buildCommitted
from peak_lite.running.gateways.webapp import COMPONENT_KEY, WebApp, route
from peak_lite.running.interfaces import IWSGIApplication
from peak_lite.storage import SQLiteConnection


def call(app, method, path, body=b'', query=''):
    got = {}

    def start_response(status, headers, exc_info=None):
        got.update(status=status, headers=dict(headers))
    environ = {'REQUEST_METHOD': method, 'PATH_INFO': path, 'SCRIPT_NAME': '',
               'QUERY_STRING': query, 'wsgi.input': io.BytesIO(body),
               'CONTENT_LENGTH': str(len(body))}
    body = b''.join(app(environ, start_response))
    return got['status'], got['headers'], body, environ


class Notes(WebApp):
    db = binding.Require("a SQLiteConnection")

    def uponAssembly(self):
        self.db.execute("CREATE TABLE IF NOT EXISTS notes (text TEXT)")

    @route('/notes', methods=('GET',))
    def list(self, request):
        return [row[0] for row in self.db.query("SELECT text FROM notes ORDER BY text")]

    @route('/notes', methods=('POST',))
    def add(self, request):
        self.db.execute("INSERT INTO notes VALUES (?)", (request.body.decode(),))
        if request.query.get('fail'):
            raise RuntimeError("refused after writing")
        return 201, [('Content-Type', 'text/plain')], 'added'

    @route('/notes/{word}')
    def one(self, request, word):
        return f"note {word}"


@pytest.fixture
def sqlite():
    """``sqlite(address)`` makes a SQLiteConnection that is closed when the test ends."""
    made = []

    def connect(address):
        made.append(SQLiteConnection(address))
        return made[-1]
    yield connect
    for conn in made:
        conn.close()


def test_a_webapp_is_a_wsgi_application(sqlite):
    assert verifyObject(IWSGIApplication, Notes(None, db=sqlite(':memory:')))


def test_routes_segments_and_json(tmp_path, sqlite):
    app = buildCommitted(Notes, None, db=sqlite(str(tmp_path / 'n.db')))
    assert call(app, 'POST', '/notes', b'tea')[0] == '201 Created'
    status, headers, body, _ = call(app, 'GET', '/notes')
    assert (status, headers['Content-Type'], body) == ('200 OK', 'application/json', b'["tea"]')
    assert call(app, 'GET', '/notes/tea')[2] == b'note tea'
    assert call(app, 'HEAD', '/notes/tea')[:3:2] == ('200 OK', b'')


def test_404_and_405_with_allow(sqlite):
    app = Notes(None, db=sqlite(':memory:'))
    assert call(app, 'GET', '/nothing')[0] == '404 Not Found'
    status, headers, _, _ = call(app, 'DELETE', '/notes')
    assert status == '405 Method Not Allowed' and headers['Allow'] == 'GET, HEAD, POST'


def test_each_request_commits_or_aborts_its_own_transaction(tmp_path, sqlite):
    path = str(tmp_path / 'n.db')
    # Built as every command builds: the table exists before the first request.
    app = buildCommitted(Notes, None, db=sqlite(path))
    call(app, 'POST', '/notes', b'kept')
    with pytest.raises(RuntimeError):
        call(app, 'POST', '/notes', b'lost', query='fail=1')
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT text FROM notes").fetchall() == [('kept',)]
    other.close()


def inner(environ, start_response):
    start_response('200 OK', [])
    return [f"{environ['SCRIPT_NAME']}|{environ['PATH_INFO']}|"
            f"{type(environ[COMPONENT_KEY]).__name__}".encode()]


class Site(Notes):
    legacy = binding.Make(lambda: inner)
    everything = binding.Make(lambda: inner)
    mounts = {'/legacy': 'legacy', '/': 'everything'}


def test_mounts_shift_the_path_and_routes_win(sqlite):
    app = Site(None, db=sqlite(':memory:'))
    assert call(app, 'GET', '/legacy/a/b')[2] == b'/legacy|/a/b|Site'
    assert call(app, 'GET', '/legacyx')[2] == b'|/legacyx|Site'
    assert call(app, 'GET', '/other')[2] == b'|/other|Site'
    assert call(app, 'GET', '/notes/x')[2] == b'note x'
