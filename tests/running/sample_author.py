"""An app author's component app, run by the process tests under every command.

``App`` writes a row at assembly into the SQLite file named by $AUTHOR_DB,
and serves the rows it sees.  The other classes fail in the ways an author's
code fails: in ``uponAssembly``, in a ``Make`` recipe; ``sample_author_typo``
misspells a binding keyword.  The line numbers of the failing lines are
asserted by the tests: keep them where they are.
"""

import os

from peak_lite import binding
from peak_lite.storage import SQLiteConnection


class Cache(binding.Component):
    def uponAssembly(self):
        {}['acc-missing']                                 # line 18: uponAssembly


class BadRecipe(binding.Component):
    table = binding.Make(lambda self: int('not a number'), uponAssembly=True)  # line 22


class Store(binding.Component):
    db = binding.Make(lambda: SQLiteConnection(os.environ['AUTHOR_DB']))

    def uponAssembly(self):
        self.db.execute("CREATE TABLE preload (pid INTEGER, note TEXT)")
        self.db.execute("INSERT INTO preload VALUES (?, ?)", (os.getpid(), 'assembled'))


class App(binding.Component):
    store = binding.Make(Store, uponAssembly=True)

    def __call__(self, environ, start_response):
        rows = self.store.db.query("SELECT pid, note FROM preload")
        start_response('200 OK', [('Content-Type', 'text/plain')])
        debug = os.environ.get('PEAK_DEBUG', '')
        return [f"rows={len(rows)} debug={debug}\n".encode()]


class FailingApp(App):
    """The same app, then a failing assembly event: nothing it wrote may stay."""

    cache = binding.Make(Cache, uponAssembly=True)


class RecipeApp(App):
    recipe = binding.Make(BadRecipe, uponAssembly=True)


class Greeting(binding.Component):
    """Not a WSGI app itself: an adapter registered in a service area makes it one."""

    text = 'hello'
    assembledBeforeAdaptation = None


class Greeter(binding.Component):
    """Obtains ``acc.greeting`` from the configuration: on the first request, not before."""

    greeting = binding.Obtain(binding.PropertyName('acc.greeting'))

    def __call__(self, environ, start_response):
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [f"{self.greeting}\n".encode()]


class Account(binding.Component):
    greeter = binding.Make(Greeter)

    def uponAssembly(self):
        self.greeter        # built (not yet looking its greeting up) before any fork

    def __call__(self, environ, start_response):
        return self.greeter(environ, start_response)


class MisspelledGreeter(Greeter):
    greeting = binding.Obtain(binding.PropertyName('acc.greting'))


class MisspelledAccount(Account):
    greeter = binding.Make(MisspelledGreeter)
