"""Scaling decisions as pure functions: no processes needed."""

import random
import types

from peak_lite.running.procman import policy
from peak_lite.running.procman.scoreboard import BUSY, IDLE, STARTING, STOPPING

CFG = types.SimpleNamespace(MaxProcesses=4, MaxRequests=100, MaxRequestsJitter=20)


def child(state=IDLE, idleFor=0.0, age=100.0, requests=1, limit=0, now=1000.0, wall=5000.0):
    return types.SimpleNamespace(state=state, lastChange=wall - idleFor, startedAt=now - age,
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
    assert policy.idleVictim([a, b, c], 1, 3, 1000.0, 5000.0) is b
    assert policy.idleVictim([a, b, c], 3, 3, 1000.0, 5000.0) is None
    assert policy.idleVictim([a, b, c], 1, 0, 1000.0, 5000.0) is None     # reaping off


def test_no_start_then_kill_a_young_child_is_never_an_idle_victim():
    old = child(state=BUSY, idleFor=50)
    young = child(idleFor=50, age=2, requests=0)   # stale slot time, young process
    starting = child(state=STARTING, idleFor=50, age=50, requests=0)
    assert policy.idleVictim([old, young, starting], 1, 3, 1000.0, 5000.0) is None


def test_a_busy_child_is_never_a_victim_even_the_oldest():
    oldest = child(state=BUSY, idleFor=100, age=1000)
    other = child(idleFor=10, age=20)
    assert policy.idleVictim([oldest, other], 1, 3, 1000.0, 5000.0) is other
    assert policy.floorVictim([oldest, other], 1, 3, 1000.0) is other
    assert policy.idleVictim([oldest, child(state=BUSY)], 1, 3, 1000.0, 5000.0) is None


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
    assert policy.overdue(child(state=BUSY, idleFor=31), 30, 5000.0)
    assert not policy.overdue(child(state=BUSY, idleFor=29), 30, 5000.0)
    assert not policy.overdue(child(state=STARTING, idleFor=99), 30, 5000.0)   # boot time
    assert not policy.overdue(child(state=BUSY, idleFor=99), 0, 5000.0)
