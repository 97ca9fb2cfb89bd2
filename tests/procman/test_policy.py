"""Scaling decisions as pure functions: no processes needed."""

import random
import types

from zope.interface.verify import verifyObject

from peak_lite.running.procman import policy
from peak_lite.running.procman.interfaces import IScalingPolicy
from peak_lite.running.procman.scoreboard import BUSY, IDLE, STARTING, STOPPING

CFG = types.SimpleNamespace(MaxProcesses=4, MaxRequests=100, MaxRequestsJitter=20)


def child(state=IDLE, idleFor=0.0, age=100.0, requests=1, limit=0, now=1000.0):
    return types.SimpleNamespace(state=state, lastChange=now - idleFor, startedAt=now - age,
                                 requests=requests, limit=limit)


def test_should_start_for_busy_only_when_every_live_child_is_busy_and_room():
    assert policy.shouldStartForBusy([BUSY, BUSY], CFG)
    assert policy.shouldStartForBusy([BUSY, BUSY, STOPPING], CFG)
    assert not policy.shouldStartForBusy([BUSY, IDLE], CFG)
    assert not policy.shouldStartForBusy([BUSY, STARTING], CFG)
    assert not policy.shouldStartForBusy([BUSY] * 4, CFG)
    assert not policy.shouldStartForBusy([], CFG)


def test_idle_victim_is_the_longest_idle_above_the_floor():
    a, b, c = child(idleFor=5), child(idleFor=9), child(idleFor=1)
    assert policy.idleVictim([a, b, c], 1, 3, 1000.0) is b
    assert policy.idleVictim([a, b, c], 3, 3, 1000.0) is None
    assert policy.idleVictim([a, b, c], 1, 0, 1000.0) is None     # reaping off


def test_no_start_then_kill_a_young_child_is_never_an_idle_victim():
    old = child(state=BUSY, idleFor=50)
    young = child(idleFor=50, age=2, requests=0)   # stale slot time, young process
    starting = child(state=STARTING, idleFor=50, age=50, requests=0)
    assert policy.idleVictim([old, young, starting], 1, 3, 1000.0) is None


def test_a_busy_child_is_never_a_victim_even_the_oldest():
    oldest = child(state=BUSY, idleFor=100, age=1000)
    other = child(idleFor=10, age=20)
    assert policy.idleVictim([oldest, other], 1, 3, 1000.0) is other
    assert policy.floorVictim([oldest, other], 1, 3, 1000.0) is other
    assert policy.idleVictim([oldest, child(state=BUSY)], 1, 3, 1000.0) is None


def test_floor_victim_spares_new_unserved_children():
    busy, new = child(state=BUSY), child(age=0.5, requests=0)
    assert policy.floorVictim([busy, new], 1, 3, 1000.0) is None
    served = child(age=0.5, requests=1, idleFor=0.2)
    assert policy.floorVictim([busy, new, served], 1, 3, 1000.0) is served
    assert policy.protected(new, 3, 1000.0) and not policy.protected(served, 3, 1000.0)


def test_request_limit_jitter_spreads_limits():
    rng = random.Random(7)
    limits = [policy.requestLimit(CFG, rng) for _ in range(50)]
    assert all(100 <= n <= 120 for n in limits) and len(set(limits)) > 5
    assert policy.requestLimit(types.SimpleNamespace(MaxRequests=0, MaxRequestsJitter=0)) == 0


def test_recycle_due_and_overdue():
    assert policy.recycleDue(child(requests=10, limit=10))
    assert not policy.recycleDue(child(requests=9, limit=10))
    assert not policy.recycleDue(child(requests=10, limit=0))
    assert not policy.recycleDue(child(state=STOPPING, requests=10, limit=10))
    assert policy.overdue(child(state=BUSY, idleFor=31), 30, 1000.0)
    assert not policy.overdue(child(state=BUSY, idleFor=29), 30, 1000.0)
    assert not policy.overdue(child(state=STARTING, idleFor=99), 30, 1000.0)   # boot time
    assert not policy.overdue(child(state=BUSY, idleFor=99), 0, 1000.0)


# -- the Policy object: a snapshot, the clock and the config in, decisions out --

from peak_lite.running.procman import scaling   # noqa: E402

POLICY_CFG = types.SimpleNamespace(MaxProcesses=4, MinProcesses=1, IdleTimeout=10.0,
                                   RequestTimeout=0.0, MaxRequests=0, MaxRequestsJitter=0)


def record(pid, **kw):
    c = child(**kw)
    c.pid = pid
    c.replacing = None
    return c


def test_policy_verifies_its_interface_of_decisions():
    verifyObject(IScalingPolicy, scaling.Policy(POLICY_CFG))


def test_policy_idle_pool_at_its_floor_has_nothing_due():
    p = scaling.Policy(POLICY_CFG)
    live = [record(1, idleFor=100)]
    assert p.housekeeping(live, 1, 1000.0) == []
    assert p.nextCheck(live, 1, 1000.0) is None


def test_policy_above_the_floor_sleeps_until_the_first_idle_deadline():
    p = scaling.Policy(POLICY_CFG)
    live = [record(1, idleFor=3), record(2, idleFor=8), record(3, state=BUSY)]
    due = p.nextCheck(live, 1, 1000.0)
    assert 1002.0 < due < 1002.1             # child 2 passes IdleTimeout 10 in 2 s
    [decision] = p.housekeeping(live, 1, 1000.0 + 2.05)
    assert decision.action == scaling.IDLE and decision.child.pid == 2
    assert p.housekeeping(live, 1, 1002.05, idleStopping=True) == []


def test_policy_request_timeout_kills_and_polls():
    cfg = types.SimpleNamespace(**dict(vars(POLICY_CFG), RequestTimeout=8.0))
    p = scaling.Policy(cfg)
    hung, fine = record(1, state=BUSY, idleFor=9), record(2, state=BUSY, idleFor=1)
    decisions = p.housekeeping([hung, fine], 1, 1000.0)
    assert [(d.action, d.child.pid) for d in decisions] == [(scaling.TIMEOUT, 1)]
    # A child that goes busy tells nobody: look again within a second.
    assert p.nextCheck([fine], 1, 1000.0) <= 1001.0


def test_policy_recycles_above_the_floor_and_replaces_first_at_it():
    p = scaling.Policy(POLICY_CFG)
    done = record(1, requests=5, limit=5)
    other = record(2)
    [d] = p.housekeeping([done, other], 1, 1000.0)
    assert d.action == scaling.RECYCLE and 'recycled after 5 requests' in d.reason
    [d] = p.housekeeping([done, other], 2, 1000.0)
    assert d.action == scaling.REPLACE_FIRST


def test_policy_growth_counts_stopping_children_toward_max_processes():
    p = scaling.Policy(POLICY_CFG)
    busy = [record(i, state=BUSY) for i in range(3)]
    assert p.wantsGrowth(busy, total=3)
    assert not p.wantsGrowth(busy, total=4)       # one more is still stopping
    assert not p.wantsGrowth(busy[:2] + [record(9)], total=3)
    assert p.changeFloor(4, +1) == 4 and p.changeFloor(1, -1) == 1


def test_policy_request_timeout_reaches_a_draining_child():
    cfg = types.SimpleNamespace(**dict(vars(POLICY_CFG), RequestTimeout=8.0))
    draining = record(7, state=STOPPING, idleFor=9)
    draining.stopAskedAt = 991.0
    p = scaling.Policy(cfg)
    [d] = p.housekeeping([record(1)], 1, 1000.0, draining=[draining])
    assert (d.action, d.child.pid) == (scaling.TIMEOUT, 7)
    draining.stopAskedAt = 995.0           # asked to stop only 5 s ago: not yet
    assert p.housekeeping([record(1)], 1, 1000.0, draining=[draining]) == []
