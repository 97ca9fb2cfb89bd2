"""Scaling decisions: pure functions of the pool's state and the config.

A policy computes; the manager decides when to ask and acts on the answer.
The children passed in are the manager's records: ``.state`` (a scoreboard
state number), ``.lastChange`` (monotonic time of the slot's last change),
``.startedAt`` (monotonic time of the fork), ``.requests`` and ``.limit``.
"""

import random

from peak_lite.running.procman.scoreboard import BUSY, IDLE, STOPPING

__all__ = ['shouldStartForBusy', 'idleVictim', 'floorVictim', 'protected', 'requestLimit',
           'overdue', 'recycleDue']


QUICK_DEATH = 1.0   # a child dying younger than this, unasked, counts toward crash backoff

def shouldStartForBusy(states, cfg):
    """The BusyStarter rule: every live child busy, and room under MaxProcesses."""
    live = [s for s in states if s != STOPPING]
    return bool(live) and all(s == BUSY for s in live) and len(live) < cfg.MaxProcesses


def protected(child, idleTimeout, now):
    """True for a child that must not be stopped for idleness or a lowered floor.

    That is a busy child, and a child that has not served its first request
    and is younger than ``idleTimeout``: no start-then-kill, ever.
    """
    if child.state != IDLE:
        return True
    return not child.requests and now - child.startedAt <= idleTimeout


def idleVictim(children, floor, idleTimeout, now):
    """The child to stop for idleness, or None.

    Only an idle child (never a starting or busy one) that has been idle
    longer than ``idleTimeout`` since it became ready or finished its last
    request, and is itself older than ``idleTimeout``, is a candidate; the
    one idle longest goes.  One at a time: the caller asks again only once
    the previous victim has gone.
    """
    if idleTimeout <= 0:
        return None
    live = [c for c in children if c.state != STOPPING]
    if len(live) <= floor:
        return None
    candidates = [c for c in live
                  if c.state == IDLE and now - c.lastChange > idleTimeout
                  and now - c.startedAt > idleTimeout]
    if not candidates:
        return None
    return min(candidates, key=lambda c: c.lastChange)


def floorVictim(children, floor, idleTimeout, now):
    """After the floor was lowered: the idle child to stop at once, or None.

    The child idle longest among those not ``protected``; when every extra
    child is protected, nothing is stopped now and idle reaping takes over.
    """
    live = [c for c in children if c.state != STOPPING]
    if len(live) <= floor:
        return None
    candidates = [c for c in live if not protected(c, idleTimeout, now)]
    if not candidates:
        return None
    return min(candidates, key=lambda c: c.lastChange)


def requestLimit(cfg, rng=random):
    """This child's MaxRequests, with its own jitter so the pool never recycles at once."""
    if cfg.MaxRequests <= 0:
        return 0
    jitter = rng.randint(0, cfg.MaxRequestsJitter) if cfg.MaxRequestsJitter else 0
    return cfg.MaxRequests + jitter


def recycleDue(child):
    """A child that has served its own request limit, and is not already stopping."""
    return child.limit > 0 and child.requests >= child.limit and child.state != STOPPING


def overdue(child, timeout, now):
    """A child busy on one request longer than ``timeout`` (boot time never counts)."""
    return timeout > 0 and child.state == BUSY and now - child.lastChange > timeout
