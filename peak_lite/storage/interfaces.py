"""Contracts and exceptions of the storage layer."""

from transaction.interfaces import IDataManager
from zope.interface import Attribute, Interface


class StorageError(Exception):
    """Base class of every error raised by peak_lite.storage."""


class InvalidURLError(StorageError, ValueError):
    """A connection URL could not be parsed; the message names the URL and the remedy."""


class ConnectionLostError(StorageError):
    """The database connection went away while a transaction was using it.

    Raised when committing a transaction whose connection was closed part-way
    (by ``close()`` or by a fork-hygiene force-close): its changes are gone,
    so the transaction must not report success.
    """


class TransactionFailedError(StorageError):
    """The database refuses to commit: an earlier statement in this transaction failed."""


class IManagedConnection(IDataManager):
    """A database connection managed by the ``transaction`` package.

    Lifecycle:

    - Nothing connects at construction.  The first *use* (``execute``,
      ``executemany``, ``query``, ``cursor`` or the ``connection`` attribute)
      opens the driver connection and records where that happened
      (``openedAt``).
    - The first use while the transaction manager has a current transaction
      joins that transaction; the connection then commits or rolls back with
      it (the commit happens in ``tpc_vote``, so a failure there is a "no"
      vote and the whole transaction aborts).
    - With an explicit-mode transaction manager and no transaction begun, each
      statement is committed at once (autocommit).
    - ``close()`` closes now.  ``closeASAP()`` closes when the current
      transaction ends, by commit or abort, or now when there is none.
    - The next use after a close reconnects.
    - A driver error raised by a statement makes the connection close as soon
      as possible (``closeASAP``), so the next transaction gets a fresh one.

    A connection belongs to one thread at a time, like the transaction
    manager's current transaction.
    """

    address = Attribute("The driver address (path or conninfo) this connection opens")
    name = Attribute("A human-readable name used in logs and warnings (no password)")
    openedAt = Attribute(
        "'file:line in function' of the code that opened the current driver "
        "connection, or None while closed")
    paramstyle = Attribute("The DB-API paramstyle of the driver ('qmark', 'format', ...)")
    connection = Attribute(
        "The raw DB-API connection: opens it if needed and joins the current "
        "transaction.  Do not call its commit()/rollback()/close() yourself.")

    def isOpen():
        """Return True while a driver connection is open."""

    def execute(sql, params=None):
        """Run one statement with driver-native parameters; return the DB-API cursor."""

    def executemany(sql, paramsSeq):
        """Run one statement once per parameter set; return the DB-API cursor."""

    def query(sql, params=None):
        """Run one statement and return all its rows as a list of tuples."""

    def cursor():
        """Return a new DB-API cursor on the (joined) connection."""

    def joinTransaction():
        """Open if needed and join the current transaction; return the raw connection."""

    def close():
        """Close the driver connection now.  Never raises; failures are logged.

        If a transaction had been joined, its uncommitted changes are lost and
        committing it raises ConnectionLostError.
        """

    def closeASAP():
        """Close at the end of the current transaction, or now if none is in progress."""

    def detachAfterFork():
        """In a forked child: forget the inherited driver connection.

        Sends nothing on the socket shared with the parent; the next use
        reconnects.  Called by the ``os.register_at_fork`` child hook.
        """


class IConnectionFactory(Interface):
    """A ManagedConnection class that can be built from a URL (provided by the class)."""

    def fromURL(parentComponent, url):
        """Return a new, unopened connection for ``url``; raise InvalidURLError if malformed."""
