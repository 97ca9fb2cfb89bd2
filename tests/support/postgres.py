"""A real PostgreSQL server for the test session, in a temporary directory.

``postgresServer`` (session scope) runs initdb and postgres (as the
``postgres`` system user when the tests run as root, since initdb refuses
root), listening only on a unix socket inside the temporary directory.  It
fails, never skips, when the server binaries are missing: CI installs them.

``pgDb`` (function scope) creates a fresh database for one test and
returns its URL; it is dropped afterwards.
"""

import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from tests.support.procs import groupPids, pidAlive, waitFor

SUPERUSER = 'postgres'
PORT = 5432   # only names the socket file: nothing listens on TCP
_dbNumbers = itertools.count(1)


def findBinDir():
    """Directory holding initdb, postgres and pg_ctl; None if not installed."""
    found = shutil.which('initdb')
    if found:
        # Debian links some binaries onto PATH; the real directory has them all.
        binDir = os.path.dirname(os.path.realpath(found))
        if all(os.path.exists(os.path.join(binDir, n)) for n in ('postgres', 'pg_ctl')):
            return binDir
    candidates = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'),
                        key=lambda p: int(p.split('/')[-3]) if p.split('/')[-3].isdigit() else 0)
    return os.path.dirname(candidates[-1]) if candidates else None


class PostgresServer:
    """One postgres server: ``start()``, ``stop()``, ``.url``, ``.dsn``, ``createDatabase()``."""

    def __init__(self, binDir):
        self.binDir = binDir
        self.baseDir = tempfile.mkdtemp(prefix='peak-pg-')
        self.dataDir = os.path.join(self.baseDir, 'data')
        self.socketDir = self.baseDir
        self.logPath = os.path.join(self.baseDir, 'postgres.log')
        self.port = PORT
        self.process = None
        self.runAs = None
        if os.geteuid() == 0:
            try:
                self.runAs = pwd.getpwnam('postgres')
            except KeyError:
                pytest.fail("tests run as root but there is no 'postgres' system user to run "
                            "the test PostgreSQL server; install the postgresql package")
            os.chown(self.baseDir, self.runAs.pw_uid, self.runAs.pw_gid)

    @property
    def dsn(self):
        return f"host={self.socketDir} port={self.port} user={SUPERUSER} dbname=postgres"

    @property
    def url(self):
        return self.urlFor('postgres')

    def urlFor(self, dbname):
        return f"postgresql://{SUPERUSER}@/{dbname}?host={self.socketDir}&port={self.port}"

    def _run(self, argv, **kw):
        return subprocess.Popen(argv, cwd=self.baseDir, **self._userArgs(), **kw)

    def _userArgs(self):
        if self.runAs is None:
            return {}
        # Like `runuser -u postgres --`, but the child is the server itself,
        # so its pid is the postmaster's.
        return dict(user=self.runAs.pw_uid, group=self.runAs.pw_gid, extra_groups=[],
                    env=dict(os.environ, HOME=self.baseDir, USER='postgres',
                             LOGNAME='postgres'))

    def start(self, timeout=60.0):
        with open(self.logPath, 'ab') as logFile:
            initdb = self._run(
                [os.path.join(self.binDir, 'initdb'), '-D', self.dataDir, '-U', SUPERUSER,
                 '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions'],
                stdout=logFile, stderr=subprocess.STDOUT)
            if initdb.wait(timeout) != 0:
                pytest.fail(f"initdb failed (exit {initdb.returncode}); see {self.logPath}:\n"
                            + self._logTail())
            self.process = self._run(
                [os.path.join(self.binDir, 'postgres'), '-D', self.dataDir,
                 '-k', self.socketDir, '-p', str(self.port),
                 '-c', 'listen_addresses=', '-c', 'fsync=off',
                 '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
                 '-c', 'max_prepared_transactions=20', '-c', 'max_connections=100'],
                stdout=logFile, stderr=subprocess.STDOUT, start_new_session=True)
        waitFor(self._ready, timeout, interval=0.05,
                 message=f"PostgreSQL in {self.dataDir} to accept connections "
                         f"(log: {self.logPath})")

    def _ready(self):
        if self.process.poll() is not None:
            pytest.fail(f"postgres exited with {self.process.returncode} at startup:\n"
                        + self._logTail())
        import psycopg
        try:
            psycopg.connect(self.dsn, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def _logTail(self, lines=20):
        try:
            with open(self.logPath, errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except OSError:
            return '(no log)'

    def createDatabase(self, name=None):
        """Create an empty database and return its URL."""
        import psycopg
        name = name or f"test_{os.getpid()}_{next(_dbNumbers)}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.urlFor(name)

    def dropDatabase(self, name):
        import psycopg
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            # A prepared transaction left by a failed test would block the drop.
            for (gid,) in conn.execute(
                    "SELECT gid FROM pg_prepared_xacts WHERE database = %s", (name,)).fetchall():
                with psycopg.connect(self.dsn.replace('dbname=postgres', f'dbname={name}'),
                                     autocommit=True) as other:
                    other.execute(f"ROLLBACK PREPARED '{gid}'")
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self, timeout=30.0):
        """Stop the server (fast shutdown, then SIGKILL) and remove its directory."""
        try:
            if self.process is not None and self.process.poll() is None:
                stopper = self._run(
                    [os.path.join(self.binDir, 'pg_ctl'), 'stop', '-D', self.dataDir,
                     '-m', 'fast', '-w', '-t', str(int(timeout))],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    stopper.wait(timeout + 5)
                except subprocess.TimeoutExpired:
                    stopper.kill()
                    stopper.wait()
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout)
                deadline = time.monotonic() + timeout
                # The backends are in the postmaster's session: wait for them too.
                while _sessionMembers(self.process.pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if _sessionMembers(self.process.pid):
                    os.killpg(self.process.pid, signal.SIGKILL)
        finally:
            shutil.rmtree(self.baseDir, ignore_errors=True)


def _sessionMembers(pgid):
    return [p for p in groupPids(pgid) if pidAlive(p)]


@pytest.fixture(scope='session')
def postgresServer():
    """A running PostgreSQL server for the whole test session (see module doc)."""
    binDir = findBinDir()
    if binDir is None:
        pytest.fail("PostgreSQL server binaries (initdb, postgres, pg_ctl) are not on PATH nor "
                    "in /usr/lib/postgresql/*/bin; install them, e.g. apt-get install postgresql")
    server = PostgresServer(binDir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def pgDb(postgresServer):
    """URL of a fresh, empty database, dropped after the test."""
    name = f"test_{os.getpid()}_{next(_dbNumbers)}"
    url = postgresServer.createDatabase(name)
    yield url
    postgresServer.dropDatabase(name)
