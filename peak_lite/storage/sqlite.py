"""The SQLite driver (stdlib ``sqlite3``), the embedded default.

URLs:

- ``sqlite:///abs/path/file.db``: an absolute path (``sqlite:////abs/...``,
  as SQLAlchemy spells it, names the same file);
- ``sqlite:relative/file.db``: relative to the current directory at lookup
  time (resolved then, so a later ``chdir`` does not move the database);
- ``sqlite::memory:``: a private in-memory database, lost when the
  connection closes.

Query parameters: ``timeout`` (seconds to wait for a lock, default 5) and
``begin`` (``DEFERRED``, ``IMMEDIATE`` or ``EXCLUSIVE``, default ``DEFERRED``).
"""

import os
import sqlite3
from urllib.parse import parse_qsl

from zope.interface import provider

from peak_lite.storage.connection import ManagedConnection
from peak_lite.storage.interfaces import IConnectionFactory, InvalidURLError

_BEGIN_MODES = ('DEFERRED', 'IMMEDIATE', 'EXCLUSIVE')


@provider(IConnectionFactory)
class SQLiteConnection(ManagedConnection):
    """A ManagedConnection to a SQLite file; see IManagedConnection.

    ``address`` is a file path or ``':memory:'``.  Driver options: ``begin``
    (the BEGIN mode) and any ``sqlite3.connect`` keyword (``timeout``, ...).
    The connection runs with ``isolation_level=None`` so that it, not the
    ``sqlite3`` module, decides where transactions begin.
    """

    driverErrors = (sqlite3.Error,)
    paramstyle = sqlite3.paramstyle
    scheme = 'sqlite'

    def __init__(self, address=None, parentComponent=None, name=None, **driverOptions):
        begin = str(driverOptions.pop('begin', 'DEFERRED')).upper()
        if begin not in _BEGIN_MODES:
            raise InvalidURLError(
                f"SQLite begin mode {begin!r} is not one of {', '.join(_BEGIN_MODES)}")
        self.beginMode = begin
        driverOptions.setdefault('timeout', 5.0)
        super().__init__(address, parentComponent, name, **driverOptions)

    @classmethod
    def fromURL(cls, parentComponent, url):
        scheme, sep, rest = url.partition(':')
        if scheme.lower() != 'sqlite' or not sep:
            raise InvalidURLError(f"{url!r} is not a sqlite: URL; use sqlite:///abs/path.db")
        rest, _, query = rest.partition('?')
        if rest.startswith('//'):
            host, slash, path = rest[2:].partition('/')
            if host not in ('', 'localhost') or not slash:
                raise InvalidURLError(
                    f"{url!r}: a sqlite URL names a local file: use sqlite:///abs/path.db "
                    "or sqlite:relative/path.db")
            path = '/' + path
        else:
            path = rest
        if not path:
            raise InvalidURLError(f"{url!r} names no file; use sqlite:///abs/path.db")
        if path != ':memory:':
            # sqlite:////abs (SQLAlchemy's spelling) means the same file as sqlite:///abs
            path = os.path.abspath('/' + path.lstrip('/') if path.startswith('/') else path)
        options = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key == 'timeout':
                try:
                    options['timeout'] = float(value)
                except ValueError:
                    raise InvalidURLError(
                        f"{url!r}: timeout={value!r} is not a number of seconds") from None
            elif key == 'begin':
                options['begin'] = value
            else:
                raise InvalidURLError(
                    f"{url!r}: unknown sqlite URL parameter {key!r} (known: timeout, begin)")
        return cls(path, parentComponent, url, **options)

    def _driverConnect(self):
        return sqlite3.connect(self.address, isolation_level=None, **self.driverOptions)

    def _driverBegin(self, raw, txn):
        raw.execute(f"BEGIN {self.beginMode}")

    def _driverVote(self, raw):
        if raw.in_transaction:
            raw.execute("COMMIT")

    def _driverRollback(self, raw):
        if raw.in_transaction:
            raw.execute("ROLLBACK")

    # _driverDetach is the base class's: never close the inherited handle.
    # sqlite3_close() in a child could roll back the parent's open write
    # transaction into the shared file (the child holds none of the parent's
    # fcntl locks).
