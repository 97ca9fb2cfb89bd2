"""The manager's own counts: what exited children served, spawns, exits by reason, reloads.

A child's counters live in its scoreboard slot while it runs.  When the
manager reaps it, ``exited()`` adds them here before the slot is cleared,
in the same loop callback, so the totals a scrape sees (this plus the live
slots) never go backwards.
"""

import json
import logging

from zope.interface import implementer

from peak_lite.running.procman.scoreboard import BUCKETS, CODE_CLASSES
from peak_lite.running.procman.status.interfaces import ITally
from peak_lite.running.procman.status.metrics import EXIT_REASONS

__all__ = ['Tally', 'exitReason', 'CARRY_ENV']

log = logging.getLogger('peak_lite.procman')

CARRY_ENV = 'PEAK_PROCMAN_TALLY'     # the totals, across a restart's exec
_CARRIED = ('requests', 'durationSum', 'codes', 'buckets', 'spawns', 'exits', 'reloads')


def exitReason(child):
    """The ``peak_worker_exits_total`` reason of a reaped child, from its stop reason."""
    if child.stopStage is None:
        return 'crash'                      # nobody asked it to go
    reason = child.stopReason or ''
    if reason in EXIT_REASONS:
        return reason
    if reason == 'request timeout':
        return 'timeout'
    if reason.startswith('recycled after'):
        return 'max_requests'
    if 'memory' in reason:
        return 'memory'
    if reason in ('floor lowered',):
        return 'idle'
    if reason == 'restart':
        return 'reload'
    return 'stop'


@implementer(ITally)
class Tally:
    """See ITally."""

    def __init__(self):
        self.requests = 0
        self.durationSum = 0.0
        self.codes = [0] * len(CODE_CLASSES)
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.spawns = 0
        self.exits = dict.fromkeys(EXIT_REASONS, 0)
        self.reloads = {'accepted': 0, 'refused': 0}

    @classmethod
    def fromEnvironment(cls, environ):
        """A Tally that goes on from the totals our previous self carried across exec."""
        tally = cls()
        value = environ.pop(CARRY_ENV, None)
        if not value:
            return tally
        try:
            carried = json.loads(value)
            fresh = {name: getattr(tally, name) for name in _CARRIED}
            for name in _CARRIED:
                kept = carried[name]
                if type(kept) is not type(fresh[name]) and not (
                        isinstance(fresh[name], float) and isinstance(kept, int)):
                    raise TypeError(name)
                if isinstance(kept, list) and len(kept) != len(fresh[name]):
                    raise ValueError(name)
                if isinstance(kept, dict):
                    kept = {k: int(kept.get(k, 0)) for k in fresh[name]}
                setattr(tally, name, kept)
        except (ValueError, TypeError, KeyError):
            log.warning("%s is not a tally this version carries; counting from zero", CARRY_ENV)
            return cls()
        return tally

    def carryAcrossExec(self, environ):
        environ[CARRY_ENV] = json.dumps({name: getattr(self, name) for name in _CARRIED})

    def spawned(self):
        self.spawns += 1

    def exited(self, child, board):
        self.absorb(child, board)
        self.exits[exitReason(child)] += 1

    def absorb(self, child, board):
        """Add what ``child``'s slot counted to the totals: it exited, or an
        overlapping reload hands it to a new image that cannot read its slot."""
        self.absorbSlot(board, child.slot)

    def absorbSlot(self, board, index):
        """Add what slot ``index`` of ``board`` counted to the totals."""
        _, _, requests, _, _ = board.read(index)
        total, codes, buckets = board.counters(index)
        self.requests += requests
        self.durationSum += total
        self.codes = [a + b for a, b in zip(self.codes, codes)]
        self.buckets = [a + b for a, b in zip(self.buckets, buckets)]

    def reloaded(self, ok):
        self.reloads['accepted' if ok else 'refused'] += 1

    def totals(self, board, slots, carried=()):
        """(requests, duration sum, codes, buckets): ours plus the live ``slots``' of
        ``board``, plus the ``(board, slot)`` pairs ``carried`` (a previous generation's)."""
        requests, durationSum = self.requests, self.durationSum
        codes, buckets = list(self.codes), list(self.buckets)
        for board, index in [(board, i) for i in slots] + list(carried):
            requests += board.read(index)[2]
            total, more, counts = board.counters(index)
            durationSum += total
            codes = [a + b for a, b in zip(codes, more)]
            buckets = [a + b for a, b in zip(buckets, counts)]
        return requests, durationSum, codes, buckets
