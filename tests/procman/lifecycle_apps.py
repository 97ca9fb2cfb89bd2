"""Apps, commands and a signal handler that the procman lifecycle tests run in real processes.

Each one reports what it saw through files named by environment variables,
so a test can observe the manager and its children from the outside.
"""

import os
import signal
import sys
import time

import transaction

from peak_lite import binding
from peak_lite.storage import PostgreSQLConnection, SQLiteConnection


def _append(var, line):
    """Append one line to the file named by environment variable ``var`` (if set)."""
    path = os.environ.get(var)
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + '\n').encode())
        finally:
            os.close(fd)


def _children(pid):
    with open(f'/proc/{pid}/task/{pid}/children') as f:
        return f.read().split()


def _text(start_response, body):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]


def _orphan(name):
    """Leave a grandchild, named ``name`` in /proc, that outlives its parent by 0.3 s."""
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    try:
        if os.fork() == 0:
            with open('/proc/self/comm', 'w') as f:
                f.write(name)
            time.sleep(0.3)
    finally:
        os._exit(0)


def lifecycle(environ, start_response):
    """``/`` pid; ``/sleep?S``; ``/log?TEXT`` writes TEXT to stderr; ``/orphan?NAME``."""
    path, query = environ.get('PATH_INFO'), environ.get('QUERY_STRING', '')
    if path == '/sleep':
        time.sleep(float(query or 1))
    elif path == '/log':
        sys.stderr.write(f"{query} from pid {os.getpid()}\n")
        sys.stderr.flush()
    elif path == '/orphan':
        _orphan(query or 'orphan')
    return _text(start_response, f"pid={os.getpid()}\n")


class Preloaded(binding.Component):
    """Reads a SQLite table once, at assembly, and serves what it read.

    ``uponAssembly`` appends ``assembled PID CHILDREN ROWS`` to $PRELOAD_LOG,
    and ``committed PID OK`` when the transaction it ran in commits.
    """

    def uponAssembly(self):
        db = SQLiteConnection(os.environ['PRELOAD_DB'])
        self.rows = [r[0] for r in db.query("SELECT word FROM words ORDER BY word")]
        pid = os.getpid()
        transaction.get().addAfterCommitHook(
            lambda ok: _append('PRELOAD_LOG', f"committed {pid} {ok}"))
        _append('PRELOAD_LOG', f"assembled {pid} {len(_children(pid))} {','.join(self.rows)}")
        db.closeASAP()

    def __call__(self, environ, start_response):
        return _text(start_response, f"pid={os.getpid()} words={','.join(self.rows)}\n")


class FailsToPreload(binding.Component):
    """Writes a row inside the preload transaction, then fails: the row must not stay."""

    def uponAssembly(self):
        db = SQLiteConnection(os.environ['PRELOAD_DB'])
        db.execute("INSERT INTO words VALUES ('uncommitted')")
        raise RuntimeError("the cache could not be filled")

    def __call__(self, environ, start_response):
        return _text(start_response, "never served\n")


class PgPreloaded(binding.Component):
    """Reads PostgreSQL at assembly through a managed connection, then closeASAP.

    Each request answers ``pid=P backend=B preload=B0 greeting=G``: the
    child's own backend pid, and the one the preload used.
    """

    def uponAssembly(self):
        self.db = PostgreSQLConnection.fromURL(None, os.environ['PG_URL'])
        self.greeting = self.db.query("SELECT greeting FROM greetings")[0][0]
        self.preloadBackend = self.db.query("SELECT pg_backend_pid()")[0][0]
        self.db.closeASAP()

    def __call__(self, environ, start_response):
        with transaction.manager:
            backend = self.db.query("SELECT pg_backend_pid()")[0][0]
        return _text(start_response, f"pid={os.getpid()} backend={backend} "
                     f"preload={self.preloadBackend} greeting={self.greeting}\n")


def crash():
    """A command that fails at once, in every child."""
    return 1


def _stubborn(ignoreTerm):
    def note(what):
        _append('ESCALATION_LOG', f"{os.getpid()} {what} {time.time():.6f}")

    def onTerm(signum, frame):
        note('TERM')
        if not ignoreTerm:
            os._exit(0)

    signal.signal(signal.SIGHUP, lambda signum, frame: note('HUP'))
    signal.signal(signal.SIGTERM, onTerm)
    note('READY')
    while True:
        signal.pause()


def ignoresHup():
    """A command that ignores SIGHUP (noting it) and exits on SIGTERM."""
    return _stubborn(ignoreTerm=False)


def ignoresHupAndTerm():
    """A command that notes and ignores both SIGHUP and SIGTERM."""
    return _stubborn(ignoreTerm=True)


class MarkingHandler:
    """A main-loop signal handler set by a ChildConfig .ini.

    SIGUSR2 appends ``usr2 PID`` to $HANDLER_LOG; SIGHUP, SIGINT and SIGTERM
    behave like the default handler, so the manager can still stop the child.
    """

    def __init__(self, mainLoop):
        self.mainLoop = mainLoop

    def SIGUSR2(self, signum, frame):
        _append('HANDLER_LOG', f"usr2 {os.getpid()}")

    def SIGHUP(self, signum, frame):
        self.mainLoop.stopAfterCurrent()

    def SIGTERM(self, signum, frame):
        self.mainLoop.stop()

    SIGINT = SIGTERM
