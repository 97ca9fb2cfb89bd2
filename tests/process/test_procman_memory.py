"""MaxMemory through real children: a child that allocated 120 MB is recycled (its
replacement first, at the floor); one whose memory is only the manager's preloaded,
shared pages is not."""

import re
import threading

from peak_lite.running.procman.memory import memoryOf
from tests.procman.scaling_apps import readBoard
from tests.support.procman import Procman
from tests.support.procs import waitFor

APP = 'CGI tests.procman.ops_apps:ops'
MB = 1 << 20


def pidOf(response):
    body = response.body.decode() if isinstance(response.body, bytes) else response.body
    return int(re.search(r'pid=(\d+)', body).group(1))


def test_max_memory_recycles_private_growth_not_shared_preload(tmp_path, procs):
    flag = tmp_path / 'release'
    pm = Procman(tmp_path, procs, command=APP,
                 extra="MinProcesses 2\nMaxProcesses 2\nMaxMemory 100MB\n"
                       "import tests.procman.ops_big").start(children=2)
    held = []
    # Child A reads every page of the 200 MB preloaded object, then stays busy, so
    # that the next request goes to child B.
    holder = threading.Thread(target=lambda: held.append(
        pm.request('/hold', query=str(flag), timeout=60)))
    holder.start()
    waitFor(lambda: _busy(pm) == 1, 30, message="child A busy")
    grower = pidOf(pm.request('/grow', query='120', timeout=60))
    flag.touch()
    holder.join(60)
    reader = pidOf(held[0])
    assert reader != grower
    usedA, usedB = memoryOf(reader), memoryOf(grower)
    # Shared pages are in A's RSS, not its USS; B's 120 MB are its own.
    assert usedA['rss'] > 200 * MB and usedA['uss'] < 100 * MB, usedA
    assert usedB is None or usedB['uss'] > 120 * MB, usedB
    # Checked every 10 s: B is recycled with reason 'memory'; at the floor of 2,
    # its replacement starts first.
    waitFor(lambda: re.search(rf'child {grower} .*\(memory\)', pm.log()), 40,
             message="the grown child recycled for memory")
    log = pm.log()
    assert re.search(rf'child {grower} holds 1[2-9]\d\.\d MB of private memory \(USS\), '
                     r'above MaxMemory 100\.0 MB', log), log
    warned = log.index(f'child {grower} holds')
    replacement = re.compile(r'started child (\d+)').search(log, warned)
    assert replacement and replacement.start() < log.index(f'child {grower} ', warned + 10)
    # A, whose memory is the manager's shared pages, was looked at by that same check.
    assert reader in pm.children()
    assert f'child {reader} holds' not in log
    assert memoryOf(reader)['uss'] < 100 * MB
    waitFor(lambda: len(pm.children()) == 2 and grower not in pm.children(), 20,
             message="two children, the grown one gone")
    assert pm.request('/').status == 200
    pm.stop()


def _busy(pm):
    return sum(1 for slot in readBoard(pm.scoreboard)[1].values() if slot['state'] == 'busy')
