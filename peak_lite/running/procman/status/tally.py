"""The manager's own counts: what exited children served, spawns, exits by reason, reloads.

A child's counters live in its scoreboard slot while it runs.  When the
manager reaps it, ``exited()`` adds them here before the slot is cleared,
in the same loop callback, so the totals a scrape sees (this plus the live
slots) never go backwards.
"""

from zope.interface import implementer

from peak_lite.running.procman.scoreboard import BUCKETS, CODE_CLASSES
from peak_lite.running.procman.status.interfaces import ITally
from peak_lite.running.procman.status.metrics import EXIT_REASONS

__all__ = ['Tally', 'exitReason']


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

    def spawned(self):
        self.spawns += 1

    def exited(self, child, board):
        _, _, requests, _, _ = board.read(child.slot)
        total, codes, buckets = board.counters(child.slot)
        self.requests += requests
        self.durationSum += total
        self.codes = [a + b for a, b in zip(self.codes, codes)]
        self.buckets = [a + b for a, b in zip(self.buckets, buckets)]
        self.exits[exitReason(child)] += 1

    def reloaded(self, ok):
        self.reloads['accepted' if ok else 'refused'] += 1

    def totals(self, board, slots):
        """(requests, duration sum, codes, buckets): ours plus the live ``slots``'."""
        requests, durationSum = self.requests, self.durationSum
        codes, buckets = list(self.codes), list(self.buckets)
        for index in slots:
            requests += board.read(index)[2]
            total, more, counts = board.counters(index)
            durationSum += total
            codes = [a + b for a, b in zip(codes, more)]
            buckets = [a + b for a, b in zip(buckets, counts)]
        return requests, durationSum, codes, buckets
