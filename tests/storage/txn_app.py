"""A WSGI app behind TransactionMiddleware, served by wsgiref, for process tests.

Run: ``python -m tests.storage.txn_app DATABASE_URL``.  Prints the port.
``POST /write/N`` inserts N and answers 200; ``/raise/N`` inserts then raises;
``/fail/N`` inserts then answers 503; ``/doom/N`` inserts, dooms, answers 200.
"""

import sys
import wsgiref.simple_server

from peak_lite.storage import (
    PostgreSQLConnection, SQLiteConnection, TransactionMiddleware)


class QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *args):
        pass


def makeApp(url):
    factory = SQLiteConnection if url.startswith('sqlite:') else PostgreSQLConnection
    db = factory.fromURL(None, url)
    mark = '?' if db.paramstyle == 'qmark' else '%s'

    def app(environ, start_response):
        _, action, value = environ['PATH_INFO'].split('/')
        db.execute(f"INSERT INTO t VALUES ({mark})", (int(value),))
        if action == 'raise':
            raise RuntimeError("the application failed")
        if action == 'doom':
            environ['transaction.manager'].doom()
        status = '503 Service Unavailable' if action == 'fail' else '200 OK'
        start_response(status, [('Content-Type', 'text/plain')])
        return [f"{action} {value}\n".encode()]

    return TransactionMiddleware(app)


def main(url):
    server = wsgiref.simple_server.make_server(
        '127.0.0.1', 0, makeApp(url), handler_class=QuietHandler)
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == '__main__':
    main(sys.argv[1])
