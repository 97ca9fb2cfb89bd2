"""What the status listener may read of the manager: an explicit, read-only view.

The status service (status/service.py) answers from the manager's memory: its
config, loop, pid, environment, scoreboard, tally and sockets, the pool's
records, the previous generation a reload carried, and whether it is
stopping.  It gets exactly that, through this view, and never
the manager itself: the view is built from the same collaborators the manager
composes, plus two callables for the manager's own state.
"""

from zope.interface import implementer

from peak_lite.running.procman.interfaces import IManagerView

__all__ = ['ManagerView']


@implementer(IManagerView)
class ManagerView:
    """See IManagerView."""

    def __init__(self, cfg, loop, pid, environ, board, tally, listeners, pool, reloading,
                 mode, draining):
        self.cfg = cfg
        self.environ = environ
        self.loop = loop
        self.pid = pid
        self.board = board
        self.tally = tally
        self.listeners = listeners
        self._pool = pool
        self._reloading = reloading
        self._mode = mode
        self._draining = draining

    @property
    def children(self):
        return self._pool.records()

    @property
    def old(self):
        return self._reloading.old

    @property
    def shutdown(self):
        return self._mode()

    @property
    def draining(self):
        return self._draining()
