"""What the status keeper shows (see keeper.py): the manager as the exec left it.

Children's states are read live from their scoreboard, shared memory the
keeper still maps; its counters are those carried across the exec, the
totals the new image goes on from, so that no counter goes backwards when
it takes over.
"""

from peak_lite.running.sockets import Listeners

__all__ = ['LastState']


class LastState:
    """The manager as the keeper shows it: what StatusService reads of a Manager.

    Children: those the exec left, while they live, in their states as their
    scoreboard says now.  Counts: the tally carried across the exec (the
    children's counts are in it already), which the new image goes on from.
    """

    def __init__(self, manager):
        self.pid = manager.pid
        self.cfg = manager.cfg
        self.board = manager.board
        self.shutdown = None
        self.draining = False
        self.tally = _CarriedCounts(manager.tally)
        self.listeners = Listeners()      # the app's: closed here, no queue to show
        self.old = _LiveGeneration(manager.old) if manager.old is not None else None
        self._children = dict(manager.children)

    @property
    def children(self):
        # The keeper cannot reap them; a dead child's slot still says what it last did.
        return {pid: c for pid, c in self._children.items() if _alive(pid)}


class _CarriedCounts:
    """A tally whose totals leave out the live slots: they are counted in it already."""

    def __init__(self, tally):
        self.tally = tally
        self.spawns = tally.spawns
        self.exits = tally.exits
        self.reloads = tally.reloads

    def totals(self, board, slots):
        return self.tally.totals(board, ())


class _LiveGeneration:
    """The previous generation as the keeper sees it: those serving, while they live."""

    def __init__(self, old):
        self.old = old

    def serving(self):
        return [pid for pid in self.old.serving() if _alive(pid)]


def _alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rpartition(')')[2].split()[0] not in ('Z', 'X')
    except (OSError, IndexError):
        return False
