"""Nothing lost: a PostgreSQL-backed app under chaos and two SIGHUP restarts."""

import collections
import signal
import time

import psycopg
import pytest

from tests.reliability.apps import DB_ENV
from tests.reliability.support import Killer, zombies
from tests.support.load import ClientLoop, KeptAliveHttp
from tests.support.nginx import Nginx
from tests.support.procman import Procman
from tests.support.procs import waitFor

pytestmark = [pytest.mark.slow, pytest.mark.nginx, pytest.mark.postgres]

FLOOR = 3
CHAOS_SECONDS = 15.0


def _rows(url):
    with psycopg.connect(url) as conn:
        return {i for (i,) in conn.execute("SELECT id FROM ledger")}


def _restarts(pm):
    return pm.log().count(f"manager {pm.pid} started:") - 1


def test_every_200_has_its_row_and_no_row_lacks_one(tmp_path, procs, pgDb):
    """Each POST /?id=N inserts row N in its request's transaction.

    - Every request answered 200 has its row: TransactionMiddleware commits
      before any response byte leaves the child, so a 200 implies a commit.
    - A request not answered 200 normally has no row: a child killed before
      or during the transaction leaves nothing committed (PostgreSQL rolls
      back the dead backend's transaction).
    - The one exception is unavoidable for any server that commits before it
      answers: the child is killed after COMMIT was sent to PostgreSQL and
      before nginx got the response (the COMMIT round trip plus the gateway's
      send).  The client sees a 502 for a request whose row exists.  The app
      keeps that window as small as it can (the commit is the last thing
      before the response bytes are handed over), each SIGKILL can open it
      for at most the one request its child is serving, so such rows are
      counted separately: each must belong to a request that failed, and
      there can be no more of them than kills.  The reverse, a 200 without
      its row, would be a lost write and is never allowed.
    """
    with psycopg.connect(pgDb, autocommit=True) as conn:
        conn.execute("CREATE TABLE ledger (id bigint PRIMARY KEY, pid integer NOT NULL)")
    pm = Procman(tmp_path, procs, command='CGI tests.reliability.apps:ledger', prefork=FLOOR,
                 extra=f"MinProcesses {FLOOR}\nMaxProcesses 5\nIdleTimeout 2",
                 env={DB_ENV: pgDb}).start()
    # One connection per request: a child holds at most the request it is
    # serving, so each kill may fail one request and a restart none (the
    # backlog holds new connections across the exec).  Kept-alive FastCGI
    # connections across a restart are tested by test_restart_keep_alive below.
    nginx = Nginx(tmp_path, fastcgi_pass=f'unix:{pm.socket}', keep_conn=False, workers=2)
    nginx.start()
    try:
        with ClientLoop(KeptAliveHttp(nginx.url, path='/?ms=20', method='POST'),
                        threads=6) as load:
            waitFor(lambda: load.finished() > 30, 20, message="the load to get going")
            killer = Killer(pm, every=0.2).start()
            try:
                started = time.monotonic()
                for restart in (1, 2):
                    waitFor(lambda: time.monotonic() - started > restart * CHAOS_SECONDS / 3,
                            30, interval=0.1, message="the time for a restart")
                    pm.signal(signal.SIGHUP)
                    waitFor(lambda: _restarts(pm) >= restart, 30,
                            message=f"restart {restart} of the manager")
                waitFor(lambda: time.monotonic() - started > CHAOS_SECONDS, 30, interval=0.1,
                        message="the end of the chaos")
            finally:
                kills = killer.stop()
        results = load.samples()
        assert pm.proc.returncode is None

        answered = {s.id for s in results if s.ok}
        failed = {s.id: s.value for s in results if not s.ok}
        rows = _rows(pgDb)
        lost = sorted(answered - rows)
        unanswered = sorted(rows - answered)
        kinds = collections.Counter(failed.values())
        summary = (f"{len(results)} requests, {len(answered)} answered 200, {len(kills)} kills, "
                   f"2 restarts, {len(failed)} failed {kinds.most_common(4)}, "
                   f"{len(unanswered)} rows without a 200")
        upstream = [line.split('[error]', 1)[1][:160] for line in nginx.errorLogText().splitlines()
                    if '[error]' in line]
        if len(failed) > len(kills):
            summary += "; nginx said:\n" + "\n".join(upstream) + "\nprocman said:\n" + pm.log()
        assert len(answered) > 10 * len(kills), summary
        assert len(failed) <= len(kills), summary
        assert not lost, f"answered 200 but no row: {lost[:20]}; {summary}"
        assert set(unanswered) <= set(failed), (
            f"rows for ids never sent: {sorted(set(unanswered) - set(failed))[:20]}")
        assert len(unanswered) <= len(kills), summary
        print(f"\nnothing lost: {summary}")

        waitFor(lambda: len(pm.children()) == FLOOR and not zombies(pm.pid), 30,
                 message=f"the pool back to {FLOOR} children, no zombies")
        pm.stop()
    finally:
        nginx.stop()


def test_restart_keep_alive(tmp_path, procs, pgDb):
    """Two SIGHUP restarts under POST load over kept-alive FastCGI connections lose nothing.

    A stopping child serves what arrives on its open connections until they
    fall quiet, closing each after its response (Worker.drain).  That leaves
    one race no server can close alone: nginx may pick a cached connection
    and write a request on it just as the child closes it.  nginx retries a
    request that failed on a cached connection, but by default never a POST,
    so the nginx setup docs/gateways.md recommends for keep-alive adds
    ``fastcgi_next_upstream error timeout non_idempotent``.  With it, nothing
    is lost, and the ledger's primary key shows nothing ran twice (a second
    insert of one id would fail the request).
    """
    with psycopg.connect(pgDb, autocommit=True) as conn:
        conn.execute("CREATE TABLE ledger (id bigint PRIMARY KEY, pid integer NOT NULL)")
    pm = Procman(tmp_path, procs, command='CGI tests.reliability.apps:ledger', prefork=FLOOR,
                 extra=f"MinProcesses {FLOOR}\nMaxProcesses 5", env={DB_ENV: pgDb}).start()
    nginx = Nginx(tmp_path, fastcgi_pass=f'unix:{pm.socket}', keep_conn=True, workers=2,
                  extra_location='fastcgi_next_upstream error timeout non_idempotent;')
    nginx.start()
    try:
        with ClientLoop(KeptAliveHttp(nginx.url, path='/?ms=20', method='POST'),
                        threads=6) as load:
            for restart in (1, 2, 3):
                waitFor(lambda: load.finished() > restart * 200, 30, message="requests served")
                pm.signal(signal.SIGHUP)
                waitFor(lambda: _restarts(pm) >= restart, 30,
                        message=f"restart {restart} of the manager")
                # At least the floor: under this load the new manager grows its
                # pool within milliseconds of READY, so exactly FLOOR may never
                # be seen.
                pm.waitChildren(FLOOR, exact=False)
        results = load.samples()
        failed = [(s.id, s.value) for s in results if not s.ok]
        answered = {s.id for s in results if s.ok}
        assert answered <= _rows(pgDb)
        assert not failed, (f"{len(failed)} of {len(results)} requests failed across 3 restarts: "
                            f"{failed[:5]}")
        pm.stop()
    finally:
        nginx.stop()
