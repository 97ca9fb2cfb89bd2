"""ManagedConnection: a lazily opened DB-API connection driven by ``transaction``."""

import ctypes
import itertools
import logging
import os
import traceback
import weakref

import transaction
from transaction.interfaces import NoTransaction
from zope.interface import implementer

from peak_lite.storage import registry
from peak_lite.storage.interfaces import (
    ConnectionLostError, IManagedConnection, StorageError)

log = logging.getLogger('peak_lite.storage')

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_serials = itertools.count(1)


def _callerLocation():
    """Return 'file:line in function' of the innermost caller outside this package."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR + os.sep):
            return f"{frame.filename}:{frame.lineno} in {frame.name}"
    return 'an unknown location'


def peekTransaction(manager):
    """Return the manager's current transaction, or None, without creating one.

    ``ITransactionManager.get()`` creates a transaction in implicit mode, which
    would make every call look like it happens inside one; so look at the
    plain manager's current transaction instead.
    """
    if getattr(manager, 'explicit', False):
        try:
            return manager.get()
        except NoTransaction:
            return None
    plain = getattr(manager, 'manager', manager)
    if hasattr(plain, '_txn'):
        return plain._txn
    return manager.get()


@implementer(IManagedConnection)
class ManagedConnection:
    """Base class of the drivers; see IManagedConnection.

    Drivers override the ``_driver*`` hooks and set ``driverErrors``.
    """

    #: Exception classes of the driver that make the connection close ASAP.
    driverErrors = ()
    paramstyle = None
    scheme = None

    def __init__(self, address=None, parentComponent=None, name=None,
                 transactionManager=None, **driverOptions):
        self.address = address
        self.parentComponent = parentComponent
        self.name = name or self._defaultName()
        self.driverOptions = driverOptions
        self.transaction_manager = (
            transaction.manager if transactionManager is None else transactionManager)
        self.openedAt = None
        self._raw = None
        self._openedPid = None
        self._joined = None         # the transaction we take part in
        self._closeAtEndOf = None   # weakref to the transaction that closes us at its end
        self._lost = False          # closed while joined: the transaction's work is gone
        self._serial = next(_serials)
        registry.register(self)

    def _defaultName(self):
        return f"{self.scheme}:{self.address}" if self.scheme else str(self.address)

    def __del__(self):
        # A dropped connection closes its driver connection quietly, rather
        # than leaving it to the driver's finaliser (psycopg warns there).
        # The transaction holds joined connections, so none is dropped mid-way.
        if getattr(self, '_raw', None) is None:
            return
        if self._openedPid == os.getpid():
            self._closeRaw()
        else:
            self.detachAfterFork()

    def __repr__(self):
        state = 'open' if self.isOpen() else 'closed'
        return f"<{type(self).__name__} {self.name} ({state})>"

    # -- driver hooks ---------------------------------------------------
    def _driverConnect(self):
        raise NotImplementedError

    def _driverBegin(self, raw, txn):
        """Start a database transaction on ``raw`` for ``txn``."""

    def _driverVote(self, raw):
        raw.commit()

    def _driverFinish(self, raw):
        """Make a voted transaction permanent (only two-phase drivers do work here)."""

    def _driverRollback(self, raw):
        raw.rollback()

    def _driverCheckCommittable(self, raw):
        """Raise StorageError if the database would not really commit."""

    def _driverDetach(self, raw):
        """Forget ``raw`` in a forked child without sending anything to the server.

        The safe default for any driver: never close or finalise the inherited
        object, not even at interpreter exit, so no driver code runs on state
        the parent still uses.  This leaks one object (and its descriptor) per
        inherited connection in the child.
        """
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(raw))

    # -- opening and closing ---------------------------------------------
    def isOpen(self):
        return self._raw is not None

    def _open(self):
        if self._raw is None:
            try:
                self._raw = self._driverConnect()
            except self.driverErrors as exc:
                reason = ' '.join(str(exc).split())
                raise StorageError(
                    f"cannot open database connection {self.name}: {reason}"
                    " (check the URL, the path or server, and the permissions)") from exc
            self._openedPid = os.getpid()
            self.openedAt = _callerLocation()
        return self._raw

    def close(self):
        self._closeAtEndOf = None
        if self._joined is not None and self._raw is not None:
            self._lost = True
        self._closeRaw()

    def _closeRaw(self):
        raw, self._raw = self._raw, None
        self.openedAt = None
        if raw is None:
            return
        try:
            raw.close()
        except Exception:
            log.warning("error while closing database connection %s", self.name,
                        exc_info=True)

    def closeASAP(self):
        txn = self._joined or peekTransaction(self.transaction_manager)
        if txn is None:
            self.close()
            return
        self._closeAtEndOf = weakref.ref(txn)
        if self._joined is None:
            # Nothing uncommitted here: close now, and close again at the end
            # of this transaction if it is used meanwhile.
            self._closeRaw()

    def detachAfterFork(self):
        raw, self._raw = self._raw, None
        self._joined = None
        self._closeAtEndOf = None
        self._lost = False
        self.openedAt = None
        if raw is not None and self._openedPid != os.getpid():
            try:
                self._driverDetach(raw)
            except Exception:
                log.warning("error while detaching inherited connection %s", self.name,
                            exc_info=True)

    # -- use ---------------------------------------------------------------
    def joinTransaction(self):
        fresh = self._raw is None
        raw = self._open()
        if self._joined is None:
            txn = self._currentTransaction()
            if txn is not None:
                self._join(raw, txn)
        elif fresh:
            # Reopened inside a transaction that lost its first connection:
            # keep statements transactional; tpc_begin still refuses to commit.
            self._driverBegin(raw, self._joined)
        return raw

    def _currentTransaction(self):
        try:
            return self.transaction_manager.get()
        except NoTransaction:
            return None

    def _join(self, raw, txn):
        closer = self._closeAtEndOf and self._closeAtEndOf()
        if closer is not txn:
            self._closeAtEndOf = None
        self._lost = False
        txn.join(self)
        self._joined = txn
        try:
            self._driverBegin(raw, txn)
        except self.driverErrors:
            self._driverFailed()
            raise

    @property
    def connection(self):
        return self.joinTransaction()

    def cursor(self):
        raw = self.joinTransaction()
        try:
            return raw.cursor()
        except self.driverErrors:
            self._driverFailed()
            raise

    def execute(self, sql, params=None):
        raw = self.joinTransaction()
        try:
            cur = raw.cursor()
            if params is None:
                cur.execute(sql)
            else:
                cur.execute(sql, params)
            self._autocommit(raw)
        except self.driverErrors:
            self._driverFailed()
            raise
        return cur

    def executemany(self, sql, paramsSeq):
        raw = self.joinTransaction()
        try:
            cur = raw.cursor()
            cur.executemany(sql, paramsSeq)
            self._autocommit(raw)
        except self.driverErrors:
            self._driverFailed()
            raise
        return cur

    def query(self, sql, params=None):
        cur = self.execute(sql, params)
        try:
            return [tuple(row) for row in cur.fetchall()]
        except self.driverErrors:
            self._driverFailed()
            raise
        finally:
            cur.close()

    def _autocommit(self, raw):
        if self._joined is None:
            raw.commit()

    def _driverFailed(self):
        """A statement failed: don't trust this session past the transaction's end."""
        if self._joined is not None:
            self._closeAtEndOf = weakref.ref(self._joined)
        else:
            self.close()

    # -- IDataManager --------------------------------------------------------
    def sortKey(self):
        # '~' sorts after the usual keys: the database commits (in tpc_vote)
        # after other data managers have voted, so fewer can fail after it.
        return f"~peak_lite.storage:{self.name}:{self._serial:08d}"

    def abort(self, txn):
        if txn is not self._joined:
            return
        self._rollbackAndEnd()

    def tpc_begin(self, txn):
        if txn is not self._joined:
            return
        if self._lost or self._raw is None:
            raise ConnectionLostError(
                f"database connection {self.name} was closed during this transaction; "
                "its changes are lost: abort and retry the transaction")
        self._driverCheckCommittable(self._raw)

    def commit(self, txn):
        """Nothing to do here: the database commits in tpc_vote.  See IDataManager."""

    def tpc_vote(self, txn):
        if txn is not self._joined:
            return
        try:
            self._driverVote(self._raw)
        except self.driverErrors:
            self._closeAtEndOf = weakref.ref(txn)
            raise

    def tpc_finish(self, txn):
        if txn is not self._joined:
            return
        try:
            self._driverFinish(self._raw)
        except Exception:
            log.critical("database connection %s failed to finish a voted commit",
                         self.name, exc_info=True)
            self._closeAtEndOf = weakref.ref(txn)
        self._end(txn)

    def tpc_abort(self, txn):
        if txn is not self._joined:
            return
        self._rollbackAndEnd()

    def _rollbackAndEnd(self):
        txn = self._joined
        if self._raw is not None:
            try:
                self._driverRollback(self._raw)
            except Exception:
                log.warning("rollback failed on database connection %s; closing it",
                            self.name, exc_info=True)
                self._closeAtEndOf = weakref.ref(txn)
        self._end(txn)

    def _end(self, txn):
        closer = self._closeAtEndOf and self._closeAtEndOf()
        self._joined = None
        self._lost = False
        if closer is txn:
            self.close()
