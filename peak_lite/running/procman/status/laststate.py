"""What the status keeper shows (see keeper.py): the manager as the exec left it.

Children's states and counts are read live from their scoreboard, shared
memory the keeper still maps, on top of the tally carried across the exec:
the same sum the new image shows once it takes over (it maps that board
too), so that no counter goes backwards.
"""

from peak_lite.running.sockets import Listeners

__all__ = ['LastState']


class LastState:
    """The manager as the keeper shows it: what StatusService reads of a Manager.

    Children: those the exec left, while they live, in their states as their
    scoreboard says now.  Counts: the tally carried across the exec plus every
    one of those children's slots, dead or alive (a slot keeps its counts:
    the keeper reaps nobody).  When the board could not be carried, the
    children's counts are in the tally already.
    """

    def __init__(self, manager):
        self.pid = manager.pid
        self.cfg = manager.cfg
        self.board = manager.board
        self.shutdown = None
        self.draining = False
        self._children = dict(manager.children)
        slots = [c.slot for c in self._children.values()] if manager.board.carried else []
        self.tally = _CarriedCounts(manager.tally, slots)
        self.listeners = Listeners()      # the app's: closed here, no queue to show
        self.old = _LiveGeneration(manager.old) if manager.old is not None else None

    @property
    def children(self):
        # The keeper cannot reap them; a dead child's slot still says what it last did.
        return {pid: c for pid, c in self._children.items() if _alive(pid)}


class _CarriedCounts:
    """A tally whose totals count the slots of every child the exec left."""

    def __init__(self, tally, slots):
        self.tally = tally
        self.slots = slots
        self.spawns = tally.spawns
        self.exits = tally.exits
        self.reloads = tally.reloads

    def totals(self, board, slots, carried=()):
        return self.tally.totals(board, self.slots)


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
