"""Scaling decisions: pure functions of the pool's state and the config.

A policy computes; the manager decides when to ask and acts on the answer.
"""

import random

from peak_lite.running.procman.scoreboard import BUSY, IDLE, STOPPING

__all__ = ['shouldStartForBusy', 'idleVictim', 'requestLimit', 'overdue', 'recycleDue']


def shouldStartForBusy(states, cfg):
    """The BusyStarter rule: every live child busy, and room under MaxProcesses."""
    live = [s for s in states if s != STOPPING]
    return bool(live) and all(s == BUSY for s in live) and len(live) < cfg.MaxProcesses


def idleVictim(children, floor, idleTimeout, now, wallNow):
    """The child to stop for idleness, or None.

    ``children`` are the pool's live children (with ``.state``,
    ``.lastChange`` wall time of their slot, ``.startedAt`` monotonic).  Only a
    child that is idle (never starting: no start-then-kill) and has been
    idle longer than ``idleTimeout`` since it became ready or finished its
    last request is a candidate; the one idle longest goes, one at a time.
    """
    if idleTimeout <= 0:
        return None
    live = [c for c in children if c.state != STOPPING]
    if len(live) <= floor:
        return None
    candidates = [c for c in live
                  if c.state == IDLE and wallNow - c.lastChange > idleTimeout
                  and now - c.startedAt > idleTimeout]
    if not candidates:
        return None
    return min(candidates, key=lambda c: c.lastChange)


def requestLimit(cfg, rng=random):
    """This child's MaxRequests, with its own jitter so the pool never recycles at once."""
    if cfg.MaxRequests <= 0:
        return 0
    return cfg.MaxRequests + (rng.randint(0, cfg.MaxRequestsJitter) if cfg.MaxRequestsJitter else 0)


def recycleDue(child):
    return child.limit > 0 and child.requests >= child.limit and child.state != STOPPING


def overdue(child, timeout, wallNow):
    """A child busy on one request longer than ``timeout`` (boot time never counts)."""
    return timeout > 0 and child.state == BUSY and wallNow - child.lastChange > timeout


