"""The demo application: a WSGI app on SQLite, its cache preloaded before the fork.

``peak procman demo.conf`` builds ``DemoApp`` once, in the manager, inside a
transaction.  Its ``greetings`` binding is computed at assembly time: it
reads the greetings table and closes the connection (closeASAP), so no
child inherits an open database handle.  Each request runs in its own
transaction (TransactionMiddleware): a visit that is answered 200 is on disk.
"""

import os

from peak_lite import binding
from peak_lite.storage import SQLiteConnection, TransactionMiddleware

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DB = os.path.join(HERE, 'var', 'demo.db')

GREETINGS = [('en', 'Hello'), ('fr', 'Bonjour'), ('de', 'Hallo'), ('es', 'Hola'),
             ('it', 'Ciao'), ('nl', 'Hallo'), ('pt', 'Olá'), ('sv', 'Hej')]


class DemoApp(binding.Component):
    """Greets in the visitor's language and counts visits."""

    dbPath = binding.Make(lambda self: os.environ.get('DEMO_DB', DEFAULT_DB))
    db = binding.Make(lambda self: SQLiteConnection(self.dbPath, name='demo'))

    # Computed when the app is assembled: in the manager, before any fork.
    greetings = binding.Make(lambda self: self.loadGreetings(), uponAssembly=True)
    preloadedBy = binding.Make(lambda self: os.getpid(), uponAssembly=True)

    wsgi = binding.Make(lambda self: TransactionMiddleware(self.serve))

    def loadGreetings(self):
        db = self.db
        db.execute("CREATE TABLE IF NOT EXISTS greetings (lang TEXT PRIMARY KEY, text TEXT)")
        db.execute("CREATE TABLE IF NOT EXISTS visits (id INTEGER PRIMARY KEY, pid INTEGER)")
        db.executemany("INSERT OR IGNORE INTO greetings VALUES (?, ?)", GREETINGS)
        greetings = dict(db.query("SELECT lang, text FROM greetings"))
        db.closeASAP()      # closes when the preload transaction commits
        return greetings

    def __call__(self, environ, start_response):
        return self.wsgi(environ, start_response)

    def serve(self, environ, start_response):
        lang = (environ.get('HTTP_ACCEPT_LANGUAGE') or 'en')[:2].lower()
        path = environ.get('PATH_INFO') or '/'
        if path == '/visits':
            self.db.execute("INSERT INTO visits (pid) VALUES (?)", (os.getpid(),))
            count = self.db.query("SELECT count(*) FROM visits")[0][0]
            body = f"visit {count} recorded by worker {os.getpid()}\n"
        elif path == '/':
            body = (f"{self.greetings.get(lang, self.greetings['en'])} from worker "
                    f"{os.getpid()}; {len(self.greetings)} greetings were preloaded by "
                    f"manager {self.preloadedBy}\n")
        else:
            start_response('404 Not Found', [('Content-Type', 'text/plain')])
            return [b"not found; try / or /visits\n"]
        start_response('200 OK', [('Content-Type', 'text/plain; charset=utf-8')])
        return [body.encode('utf-8')]
