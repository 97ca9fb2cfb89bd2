"""Preload through real ``peak procman`` processes: the app is built once, in the manager,
inside a committed transaction, before any fork; its connections do not reach the children."""

import sqlite3
import subprocess

import psycopg

from tests.support.procman import Procman, oneLineEach
from tests.support.procs import waitFor


def wordsDb(tmp_path, *words):
    path = tmp_path / 'words.db'
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE words (word TEXT)")
        db.executemany("INSERT INTO words VALUES (?)", [(w,) for w in words])
    db.close()
    return str(path)


def test_assembly_hook_runs_once_in_the_manager_in_a_transaction_before_any_fork(tmp_path, procs):
    db = wordsDb(tmp_path, 'alpha', 'beta')
    record = tmp_path / 'preload.log'
    pm = Procman(tmp_path, procs, command='CGI tests.procman.lifecycle_apps:Preloaded',
                 prefork=3, env={'PRELOAD_DB': db, 'PRELOAD_LOG': str(record)}).start()
    kids = pm.children()
    seen = set()
    for _ in range(6):
        r = pm.request('/')
        assert r.status == 200 and r.body.endswith(b' words=alpha,beta\n')
        seen.add(int(r.body.split()[0].split(b'=')[1]))
    assert seen <= set(kids)
    lines = record.read_text().splitlines()
    # One assembly, by the manager, with no child yet; then its transaction committed.
    assert lines == [f"assembled {pm.pid} 0 alpha,beta", f"committed {pm.pid} True"]
    pm.stop()


def test_postgres_preload_connection_is_closed_and_not_inherited(tmp_path, procs, pgDb):
    with psycopg.connect(pgDb, autocommit=True) as conn:
        conn.execute("CREATE TABLE greetings (greeting TEXT)")
        conn.execute("INSERT INTO greetings VALUES ('hello')")
    pm = Procman(tmp_path, procs, command='CGI tests.procman.lifecycle_apps:PgPreloaded',
                 prefork=2, env={'PG_URL': pgDb}).start()
    kids = set(pm.children())
    backends, preloads = {}, set()
    for _ in range(6):
        r = pm.request('/')
        assert r.status == 200, r.body
        fields = dict(item.split(b'=') for item in r.body.split())
        assert fields[b'greeting'] == b'hello'
        backends[int(fields[b'pid'])] = int(fields[b'backend'])
        preloads.add(int(fields[b'preload']))
    assert set(backends) <= kids
    assert len(preloads) == 1 and not preloads & set(backends.values())

    def others():
        with psycopg.connect(pgDb, autocommit=True) as conn:
            return {row[0] for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")}
    # Only the children's own backends: the preload one is gone (closeASAP at commit).
    waitFor(lambda: others() == set(backends.values()), 10,
             message="pg_stat_activity to list only the children's backends")
    pm.stop()


def test_gc_freeze_happened_before_the_fork(tmp_path, procs):
    pm = Procman(tmp_path, procs, prefork=1).start()
    r = pm.request('/freeze')
    assert r.status == 200
    assert int(r.body.split(b'=')[1]) > 1000
    pm.stop()


def test_a_failed_import_exits_3_with_one_line_and_no_fork(tmp_path, procs):
    pm = Procman(tmp_path, procs, command='CGI tests.procman.lifecycle_apps:lifecycle',
                 extra='import tests.procman.no_such_module')
    pm.start(wait=False)
    assert pm.proc.wait(30) == 3
    out, err = pm.proc.popen.communicate(timeout=10)
    # One line at the terminal, the same one in the StdErr file.
    for line in oneLineEach(err.decode(), pm.log()):
        assert f"{pm.path}:" in line and 'no_such_module' in line
    assert pm.readPid() is None


def test_a_failing_assembly_hook_aborts_the_transaction_and_exits_3(tmp_path, procs):
    db = wordsDb(tmp_path, 'alpha')
    pm = Procman(tmp_path, procs, command='CGI tests.procman.lifecycle_apps:FailsToPreload',
                 env={'PRELOAD_DB': db})
    pm.start(wait=False)
    assert pm.proc.wait(30) == 3
    out, err = pm.proc.popen.communicate(timeout=10)
    for line in oneLineEach(err.decode(), pm.log()):
        assert 'the cache could not be filled' in line and f"{pm.path}:1:" in line
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT word FROM words")] == ['alpha']
    conn.close()


def test_check_preloads_without_forking(tmp_path, procs):
    db = wordsDb(tmp_path, 'alpha')
    record = tmp_path / 'preload.log'
    pm = Procman(tmp_path, procs, command='CGI tests.procman.lifecycle_apps:Preloaded',
                 env={'PRELOAD_DB': db, 'PRELOAD_LOG': str(record)})
    p = procs(['peak', 'procman', '--check', pm.path], env=pm.env, stdout=subprocess.PIPE,
              stderr=subprocess.PIPE)
    assert p.wait(30) == 0, p.popen.stderr.read()
    assert b'configuration OK' in p.popen.stdout.read()
    assert record.read_text().split()[:3] == ['assembled', str(p.pid), '0']
    assert pm.readPid() is None


def test_a_thread_alive_at_preload_is_named_in_a_warning(tmp_path, procs):
    """A thread holding a lock at fork() leaves that lock held forever in the child."""
    pm = Procman(tmp_path, procs, prefork=1, extra='import tests.procman.thread_apps').start()
    assert pm.request('/').status == 200
    log = pm.log()
    assert "thread 'cache-refresher'" in log and 'is running at fork' in log, log
    pm.stop()
