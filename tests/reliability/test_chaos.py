"""Chaos: under load through a real nginx, a random child is SIGKILLed every 200 ms for 30 s."""

import collections

import pytest

from tests.reliability.support import Killer, zombies
from tests.support.load import ClientLoop, KeptAliveHttp
from tests.support.nginx import Nginx
from tests.support.procman import Procman
from tests.support.procs import openFds, waitFor

pytestmark = [pytest.mark.slow, pytest.mark.nginx]

FLOOR = 4
CHAOS_SECONDS = 30.0


def _settled(pm, floor):
    """True once the pool holds exactly ``floor`` children and none is a zombie."""
    return len(pm.children()) == floor and not zombies(pm.pid)


def test_sigkill_a_child_every_200ms_for_30s(tmp_path, procs):
    """Only requests in flight in killed children may fail.

    Each child serves one request at a time, so one kill can fail at most the
    one request that child was serving (nginx retries a GET that failed on a
    kept-alive connection it had cached, so idle connections of a killed child
    cost nothing).  Hence failed requests <= kills.  Afterwards the pool is
    back to its floor (at once; exactly, once IdleTimeout has stopped the
    extra children started while every child was busy), nothing is left
    unreaped and the manager holds exactly the descriptors it held before.
    """
    pm = Procman(tmp_path, procs, command='CGI tests.reliability.apps:sleepy', prefork=FLOOR,
                 extra=f"MinProcesses {FLOOR}\nMaxProcesses 6\nIdleTimeout 2").start()
    nginx = Nginx(tmp_path, fastcgi_pass=f'unix:{pm.socket}', keep_conn=True, workers=2)
    nginx.start()
    try:
        waitFor(lambda: _settled(pm, FLOOR), 20, message="the pool to settle")
        fdsBefore = openFds(pm.pid)
        with ClientLoop(KeptAliveHttp(nginx.url, path='/?ms=20'), threads=8) as load:
            waitFor(lambda: load.finished() > 50, 20, message="the load to get going")
            killer = Killer(pm, every=0.2).start()
            try:
                waitFor(lambda: len(killer.killed) >= CHAOS_SECONDS / 0.2,
                        CHAOS_SECONDS + 30, interval=0.2, message="30 s of kills")
            finally:
                kills = killer.stop()
        results = load.samples()

        failures = [(s.id, s.value) for s in results if not s.ok]
        kinds = collections.Counter(o for _, o in failures)
        served = len(results) - len(failures)
        assert served > 5 * len(kills), (served, len(kills), kinds)
        assert len(failures) <= len(kills), (
            f"{len(failures)} failed requests for {len(kills)} kills: {kinds.most_common(5)}")

        # At once: never below the floor for long.  Then, with IdleTimeout 2,
        # the extra children started while every child was busy go away.
        waitFor(lambda: len(pm.children()) >= FLOOR, 10,
                 message=f"at least {FLOOR} children after the chaos")
        try:
            waitFor(lambda: _settled(pm, FLOOR), 20,
                     message=f"the pool back to its floor of {FLOOR}, no zombies")
        except AssertionError as e:
            raise AssertionError(f"{e}: children {pm.children()}, zombies {zombies(pm.pid)}; "
                                 f"log tail:\n{pm.log()[-3000:]}") from None
        assert not zombies(pm.pid)
        waitFor(lambda: openFds(pm.pid).keys() == fdsBefore.keys(), 10,
                 message=f"the manager's descriptors to be {fdsBefore}")
        assert len(openFds(pm.pid)) == len(fdsBefore)
        assert pm.proc.returncode is None
        print(f"\nchaos: {len(kills)} kills, {len(results)} requests, "
              f"{len(failures)} failed ({kinds.most_common(3)})")
        pm.stop()
    finally:
        nginx.stop()
