"""Contracts of the status listener: the manager's tally and the service it serves."""

from zope.interface import Attribute, Interface

__all__ = ['ITally', 'IStatusService', 'IStatusKeeper']


class ITally(Interface):
    """The manager's own counts, which survive its children.

    Every method is called from the manager's loop, never from a signal
    handler, and never fails.
    """

    spawns = Attribute("Children started so far")
    exits = Attribute("{reason: count} of reaped children (crash, max_requests, idle, "
                      "timeout, memory, reload, stop)")
    reloads = Attribute("{'accepted': n, 'refused': n}: outcomes of reload checks")

    def spawned():
        """A child was forked."""

    def exited(child, board):
        """``child`` was reaped: add its slot's counters, before the slot is cleared."""

    def reloaded(ok):
        """A reload check finished, accepted (``ok``) or refused."""

    def totals(board, slots, carried=()):
        """(requests, duration sum, (2xx..5xx), per-bucket counts): the exited children's
        plus those of the live children's ``slots`` of ``board`` and of the previous
        generation's ``carried`` ``(board, slot)`` pairs.  Never smaller than a previous
        call's."""


class IStatusService(Interface):
    """The manager's HTTP status listener (``StatusListen``).

    Served from the manager's own loop: ``/metrics``, ``/healthz``,
    ``/readyz``, ``/status`` and ``/``.  It never blocks the loop and never
    forks.
    """

    def respond(method, path, headers):
        """(code, content type, body bytes) for one request."""

    def snapshot():
        """A dict of everything ``/metrics`` and ``/`` show, read now."""

    def ready():
        """True while the pool accepts: not stopping, and a child is idle or busy."""

    def closeInChild():
        """In a freshly forked child: close our copies of the sockets."""

    def detach():
        """The manager's loop is ending: stop serving from it, closing nothing (a
        restart's exec may carry the socket and the clients, see keeper.py)."""

    def carryAcrossExec(environ):
        """Right before a restart's exec: keep the listening socket open across it,
        named in ``environ``, and fork the status keeper, which answers until the
        new image serves.  Never fails the restart: without a keeper, requests wait
        in the socket's backlog."""

    def serveFrom(manager, loop):
        """In the status keeper: answer from ``manager`` (a stand-in with what is
        read of a Manager) on ``loop``, the clients we had included."""

    def close():
        """Stop listening and drop the clients (the manager is stopping, or its exec
        failed: then the keeper is killed first).  Called once, after ``detach``."""


class IStatusKeeper(Interface):
    """The manager's handle on the status keeper it forked before its exec."""

    pid = Attribute("The keeper's pid")

    def kill():
        """The exec failed: kill the keeper and reap it (nothing if it is gone)."""
