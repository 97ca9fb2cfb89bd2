"""The scaling policy as an object: a snapshot, a clock and the config in, decisions out.

``Policy`` never touches a process, a timer or the scoreboard.  The manager
hands it a snapshot of its live children (records with ``.state``,
``.lastChange`` (monotonic time of the slot's last change), ``.startedAt``
(monotonic), ``.requests``, ``.limit``, ``.pid``) and the time, and acts on
what comes back: a list of ``Decision``s, and the next time anything could
become due, so that an idle manager sleeps until then.  The rules
themselves are the pure functions of ``policy``.
"""

import collections

from zope.interface import implementer

from peak_lite.running.procman import policy
from peak_lite.running.procman.interfaces import IScalingPolicy
from peak_lite.running.procman import scoreboard

__all__ = ['Policy', 'Decision', 'TIMEOUT', 'RECYCLE', 'REPLACE_FIRST', 'IDLE']

TIMEOUT = 'timeout'            # stop quickly (TERM, KILL) and replace
RECYCLE = 'recycle'            # stop gracefully and replace
REPLACE_FIRST = 'replace first'   # start the replacement, then stop it gracefully
IDLE = 'idle'                  # stop gracefully; no replacement

Decision = collections.namedtuple('Decision', 'action child reason')

#: With RequestTimeout on, how often (at most) the manager looks for hung
#: requests: a child going busy writes only its slot and wakes nobody.
TIMEOUT_POLL = 1.0
#: A request timeout is acted on this little after its deadline, never at it.
TIMEOUT_SLACK = 0.01


@implementer(IScalingPolicy)
class Policy:
    """Scaling decisions for one config.  See IScalingPolicy."""

    def __init__(self, cfg):
        self.cfg = cfg

    def housekeeping(self, live, floor, now, idleStopping=False, draining=()):
        """Decisions for the live (not stopping) children, in the order to act on them.

        ``idleStopping``: a child stopped for idleness has not exited yet, so no
        other is stopped for idleness (one at a time).  ``draining``: children
        asked to stop gracefully; one stuck on a request past RequestTimeout
        gets a TIMEOUT decision too (its replacement is already arranged).
        """
        cfg, decisions, chosen = self.cfg, [], set()
        timeout = cfg.RequestTimeout and cfg.RequestTimeout + TIMEOUT_SLACK
        for child in draining:
            # Its slot says 'stopping' even while it serves (the manager wrote
            # that byte): stuck is alive past the timeout since both its last
            # state change and the request to stop.
            if (timeout and now - child.lastChange > timeout
                    and now - child.stopAskedAt > timeout):
                decisions.append(Decision(TIMEOUT, child, 'request timeout'))
        for child in live:
            if policy.overdue(child, timeout, now):
                decisions.append(Decision(TIMEOUT, child, 'request timeout'))
                chosen.add(child.pid)
        replacing = sum(1 for c in live if getattr(c, 'replacing', None))
        for child in live:
            if child.pid in chosen or getattr(child, 'replacing', None):
                continue
            if policy.recycleDue(child):
                reason = f'recycled after {child.requests} requests (limit {child.limit})'
                remaining = len(live) - replacing - len(chosen)
                action = RECYCLE if remaining > floor else REPLACE_FIRST
                if action == REPLACE_FIRST:
                    replacing += 1
                decisions.append(Decision(action, child, reason))
                chosen.add(child.pid)
        if not idleStopping:
            victim = policy.idleVictim([c for c in live if c.pid not in chosen], floor,
                                       cfg.IdleTimeout, now)
            if victim is not None:
                decisions.append(Decision(IDLE, victim, 'idle'))
        return decisions

    def nextCheck(self, live, floor, now):
        """The monotonic time by which housekeeping must run again, or None for never.

        Idle reaping: the earliest time an idle child above the floor passes
        IdleTimeout; a child that is not idle now cannot pass it sooner than
        IdleTimeout from now.  Request timeouts: the earliest deadline of a
        busy child, and at most TIMEOUT_POLL from now, since a child that goes
        busy tells nobody.
        """
        cfg, due = self.cfg, []
        if cfg.IdleTimeout > 0 and len(live) > floor:
            for child in live:
                if child.state == scoreboard.IDLE:
                    idleFor = now - child.lastChange
                    wait = max(cfg.IdleTimeout - idleFor,
                               cfg.IdleTimeout - (now - child.startedAt))
                    due.append(now + max(wait, 0.0) + 0.001)
                else:
                    due.append(now + cfg.IdleTimeout)
        if cfg.RequestTimeout > 0:
            poll = min(TIMEOUT_POLL, max(cfg.RequestTimeout / 4, 0.05))
            due.append(now + poll)
            for child in live:
                if child.state == scoreboard.BUSY:
                    left = child.lastChange + cfg.RequestTimeout - now
                    due.append(now + max(left, 0.0) + TIMEOUT_SLACK)
        return min(due) if due else None

    def memoryDecisions(self, live, floor, usage):
        """See IScalingPolicy."""
        limit, decisions = self.cfg.MaxMemory, []
        remaining = len(live) - sum(1 for c in live if getattr(c, 'replacing', None))
        for child in live:
            if getattr(child, 'replacing', None) or usage.get(child.pid, 0) <= limit:
                continue
            decisions.append(Decision(RECYCLE if remaining > floor else REPLACE_FIRST, child,
                                      'memory'))
            remaining -= 1
        return decisions

    def wantsGrowth(self, live, total):
        """The BusyStarter rule's test: every live child busy, and room under MaxProcesses
        counting the stopping children too."""
        return (policy.shouldStartForBusy([c.state for c in live], self.cfg)
                and total < self.cfg.MaxProcesses)

    def changeFloor(self, floor, delta):
        """SIGTTIN / SIGTTOU: the new floor, between 1 and MaxProcesses."""
        return min(max(floor + delta, 1), self.cfg.MaxProcesses)

    def floorVictim(self, live, floor, now):
        """After the floor was lowered: the child to stop at once, or None."""
        return policy.floorVictim(live, floor, self.cfg.IdleTimeout, now)
