"""The PostgreSQL driver, through psycopg 3.

URL: a libpq connection URL, passed to psycopg as it is, for example
``postgresql://user:secret@db.example.com:5432/app`` or, for a unix socket,
``postgresql://user@/app?host=/run/postgresql``.
"""

import os
from urllib.parse import urlsplit, urlunsplit

from zope.interface import provider

from peak_lite.storage.connection import ManagedConnection
from peak_lite.storage.interfaces import (
    ConnectionLostError, IConnectionFactory, InvalidURLError, StorageError,
    TransactionFailedError)

try:
    import psycopg
except ImportError:  # the 'postgresql' extra is not installed
    psycopg = None


def _redacted(url):
    """``url`` with any password replaced by '***', for logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(':' + parts.password + '@', ':***@', 1)
    return urlunsplit(parts._replace(netloc=netloc))


@provider(IConnectionFactory)
class PostgreSQLConnection(ManagedConnection):
    """A ManagedConnection to PostgreSQL; see IManagedConnection.

    ``address`` is a libpq URL or conninfo string.  Driver options: any
    ``psycopg.connect`` keyword, plus ``twoPhase=True`` to commit through
    prepared transactions (``PREPARE TRANSACTION`` in ``tpc_vote``, ``COMMIT
    PREPARED`` in ``tpc_finish``; the server needs
    ``max_prepared_transactions`` > 0).
    """

    paramstyle = 'format'
    scheme = 'postgresql'

    def __init__(self, address=None, parentComponent=None, name=None, **driverOptions):
        self.twoPhase = bool(driverOptions.pop('twoPhase', False))
        self._tpcCount = 0
        self._inTPC = False
        self.driverErrors = (psycopg.Error,) if psycopg is not None else ()
        super().__init__(address, parentComponent, name, **driverOptions)

    def _defaultName(self):
        return _redacted(str(self.address))

    @classmethod
    def fromURL(cls, parentComponent, url):
        scheme = url.partition(':')[0].lower()
        if scheme not in ('postgresql', 'postgres'):
            raise InvalidURLError(
                f"{url!r} is not a postgresql:// URL; use postgresql://user@host:port/dbname")
        if psycopg is not None:
            try:
                psycopg.conninfo.conninfo_to_dict(url)
            except psycopg.Error as exc:
                raise InvalidURLError(
                    f"{_redacted(url)!r} is not a valid libpq URL: {exc}") from None
        return cls(url, parentComponent, _redacted(url))

    def _driverConnect(self):
        if psycopg is None:
            raise StorageError(
                f"cannot open {self.name}: psycopg is not installed; "
                "pip install 'peak_lite[postgresql]'")
        return psycopg.connect(self.address, autocommit=False, **self.driverOptions)

    def _driverBegin(self, raw, txn):
        if self.twoPhase:
            self._tpcCount += 1
            gtrid = f"peak_lite-{os.getpid()}-{self._serial}-{self._tpcCount}"
            raw.tpc_begin(raw.xid(0, gtrid, 'peak_lite'))
            self._inTPC = True

    def _driverCheckCommittable(self, raw):
        status = raw.info.transaction_status
        if status == psycopg.pq.TransactionStatus.INERROR:
            raise TransactionFailedError(
                f"{self.name}: a statement failed earlier in this transaction, so "
                "PostgreSQL would roll it back: abort the transaction and retry")
        if status == psycopg.pq.TransactionStatus.UNKNOWN or raw.closed:
            raise ConnectionLostError(
                f"database connection {self.name} was lost during this transaction: "
                "abort and retry it")

    def _driverVote(self, raw):
        if self._inTPC:
            raw.tpc_prepare()
        else:
            raw.commit()

    def _driverFinish(self, raw):
        if self._inTPC:
            self._inTPC = False
            raw.tpc_commit()

    def _driverRollback(self, raw):
        if self._inTPC:
            self._inTPC = False
            raw.tpc_rollback()
        else:
            raw.rollback()

    def _closeRaw(self):
        self._inTPC = False
        super()._closeRaw()

    def _driverDetach(self, raw):
        self._inTPC = False
        # Close only our copy of the socket, then let psycopg close the object:
        # libpq's Terminate message then fails with EBADF instead of reaching
        # the server on the parent's session.  Nothing runs between the two
        # calls (the child has one thread), so the fd number cannot be reused.
        try:
            fd = raw.pgconn.socket
        except psycopg.Error:
            fd = None
        if fd is not None:
            os.close(fd)
        raw.close()
