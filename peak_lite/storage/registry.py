"""Live managed connections, and what happens to them around ``fork()``."""

import logging
import os
import weakref

_connections = weakref.WeakSet()
log = logging.getLogger('peak_lite.storage')


def register(conn):
    """Record ``conn`` (weakly) so fork hygiene can find it."""
    _connections.add(conn)


def allConnections():
    """Every live ManagedConnection, open or not, in creation order."""
    return sorted(_connections, key=lambda c: c._serial)


def openConnections():
    """The live ManagedConnections that hold an open driver connection, in creation order."""
    return [c for c in allConnections() if c.isOpen()]


def beforeFork(log=None):
    """Force-close every open managed connection before the caller forks.

    Each one gets a warning naming it and the code location that opened it:
    a connection left open by preloading would otherwise be shared by every
    child.  Returns the list of connections that were closed.
    """
    logger = log or globals()['log']
    closed = []
    for conn in openConnections():
        logger.warning(
            "database connection %s is still open before fork (opened at %s); "
            "closing it. Call closeASAP() on connections used while preloading, "
            "so they close when the preload transaction commits.",
            conn.name, conn.openedAt)
        conn.close()
        closed.append(conn)
    return closed


def _afterForkInChild():
    # Runs in the child right after fork(), with a single thread alive.  The
    # driver connections still belong to the parent: detach, never close.
    for conn in allConnections():
        try:
            conn.detachAfterFork()
        except Exception:
            log.warning("could not detach inherited connection %r", conn, exc_info=True)


os.register_at_fork(after_in_child=_afterForkInChild)
