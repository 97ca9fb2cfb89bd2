"""``--status``, ``--stop`` and ``--reload``: talking to a running manager.

A manager is found through its pid file, and only a process that really
holds the pid file's ``flock`` is ever signalled: the pid written in the file
must be the lock's holder (see ``lockfile.pidFileHolder``).
"""

import json
import math
import os
import signal
import time

from peak_lite.running.interfaces import EXIT_OK, RunningError
from peak_lite.running.procman.reloadstatus import readReloadStatus, statusPath
from peak_lite.running.procman.scoreboard import clock, readScoreboard
from peak_lite.util.lockfile import pidFileHolder, readPidFile

__all__ = ['showStatus', 'poolStatus', 'poolDocument', 'stopManager', 'signalManager', 'reloadManager',
           'managerPid', 'RELOAD_PATIENCE']

RELOAD_PATIENCE = 120.0     # seconds --reload waits for the manager's verdict


def managerPid(cfg):
    """The pid of the live manager holding ``cfg.PidFile``, or raise RunningError."""
    if cfg.PidFile is None:
        raise RunningError(f"{cfg.filename}: has no PidFile, so the running manager cannot "
                           f"be found; add a PidFile line")
    named, holder = pidFileHolder(cfg.PidFile)
    if named is None:
        raise RunningError(f"{cfg.filename}: no manager is running (PidFile {cfg.PidFile} "
                           f"is not held)")
    if holder != named:
        held = f"held by {holder}" if holder else "held by a process /proc/locks does not name"
        raise RunningError(f"{cfg.filename}: PidFile {cfg.PidFile} names pid {named}, but its "
                           f"lock is {held}; not signalling anyone: check what runs there")
    return named


def signalManager(cfg, signum, stdout):
    pid = managerPid(cfg)
    os.kill(pid, signum)
    stdout.write(f"sent {signal.Signals(signum).name} to manager {pid}\n")
    return EXIT_OK


def reloadManager(cfg, stdout):
    """SIGHUP the manager, wait for its verdict on the new config and code, print it.

    Exit 0 when the manager accepted the reload; raise RunningError (exit 1)
    with the manager's reason when it refused, or when no verdict came.
    """
    pid = managerPid(cfg)
    path = statusPath(cfg.PidFile)
    last = readReloadStatus(path)
    before = last['requests'] if last and last.get('pid') == pid else 0
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + RELOAD_PATIENCE
    while time.monotonic() < deadline:
        record = readReloadStatus(path)
        if (record and record.get('pid') == pid and record.get('result')
                and (record.get('covers') or 0) > before):
            if record['result'] == 'accepted':
                stdout.write(f"manager {pid} reloaded: the new config and code passed the "
                             f"check; its children are being replaced\n")
                return EXIT_OK
            raise RunningError(f"manager {pid} refused the reload and keeps serving the old "
                               f"config and code: {record.get('reason')}")
        if readPidFile(cfg.PidFile) != pid:
            raise RunningError(f"manager {pid} exited before answering the reload")
        time.sleep(0.05)
    raise RunningError(f"manager {pid} gave no verdict on the reload within "
                       f"{RELOAD_PATIENCE:.0f}s; see its StdErr")


def stopManager(cfg, stdout):
    """SIGTERM the manager and wait, up to its stop and kill timeouts, until it is gone."""
    pid = managerPid(cfg)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + cfg.StopTimeout + cfg.KillTimeout + 5
    while time.monotonic() < deadline:
        if readPidFile(cfg.PidFile) != pid:
            stdout.write(f"manager {pid} stopped\n")
            return EXIT_OK
        time.sleep(0.05)
    raise RunningError(f"manager {pid} is still running after "
                       f"{cfg.StopTimeout + cfg.KillTimeout + 5:.0f}s")


def _semaphore(cfg):
    path = next((r.Semaphore for r in cfg.busyStarters if r.Semaphore), None)
    if path is None:
        raise RunningError(f"{cfg.filename}: --status reads the scoreboard file, and this "
                           f"config has none; add 'Semaphore /path' to a <BusyStarter> section")
    return path


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def _rss(pid):
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def poolStatus(cfg):
    """A dict describing the pool, read from the scoreboard file."""
    path = _semaphore(cfg)
    manager = managerPid(cfg) if cfg.PidFile else None
    try:
        header, slots = readScoreboard(path)
    except FileNotFoundError:
        raise RunningError(f"{cfg.filename}: Semaphore {path} does not exist; is the manager "
                           f"running with this config?") from None
    if manager is None:
        manager = header['managerPid']
        if not _alive(manager):
            raise RunningError(f"{cfg.filename}: no manager is running (Semaphore {path} "
                               f"names pid {manager}, which is gone)")
    return poolDocument(manager, cfg.filename, slots)


def poolDocument(manager, config, slots, rss=None):
    """The ``--status --json`` document: from the slot dicts of ``readScoreboard``.

    ``rss(pid)`` gives a child's resident memory in bytes (or None); the
    default reads ``/proc/PID/status``.
    """
    rss = _rss if rss is None else rss
    now = clock()
    children = []
    for slot in slots:
        if slot['pid'] <= 0:
            continue
        busy = slot['state'] == 'busy'
        age = (now - slot['lastChange'] if busy and slot['lastChange'] is not None else None)
        if age is not None and not math.isfinite(age):
            age = None
        children.append(dict(pid=slot['pid'], worker=slot['number'], state=slot['state'],
                             requests=slot['requests'], requestAge=age,
                             request=slot.get('request') or None if busy else None,
                             rss=rss(slot['pid'])))
    totals = {state: sum(1 for c in children if c['state'] == state)
              for state in ('starting', 'idle', 'busy', 'stopping', 'standby', 'unknown')}
    totals.update(children=len(children), requests=sum(c['requests'] for c in children),
                  rss=sum(c['rss'] or 0 for c in children))
    return dict(manager=manager, config=config,
                children=children, totals=totals)


def showStatus(cfg, stdout, asJSON=False):
    status = poolStatus(cfg)
    if asJSON:
        stdout.write(json.dumps(status, indent=2) + '\n')
        return EXIT_OK
    stdout.write(f"manager {status['manager']}  {status['config']}\n")
    stdout.write(f"{'PID':>8} {'WORKER':>6} {'STATE':<9} {'REQUESTS':>9} {'REQ AGE':>8} "
                 f"{'RSS MB':>7}\n")
    for c in status['children']:
        age = f"{c['requestAge']:.1f}s" if c['requestAge'] is not None else '-'
        rss = f"{c['rss'] / 1048576:.1f}" if c['rss'] else '-'
        stdout.write(f"{c['pid']:>8} {c['worker']:>6} {c['state']:<9} {c['requests']:>9} "
                     f"{age:>8} {rss:>7}\n")
    t = status['totals']
    stdout.write(f"total: {t['children']} children ({t['busy']} busy, {t['idle']} idle, "
                 f"{t['starting']} starting, {t['stopping']} stopping"
                 f"{', %d standby' % t['standby'] if t['standby'] else ''}"
                 f"{', %d unknown' % t['unknown'] if t['unknown'] else ''}), {t['requests']} "
                 f"requests, {t['rss'] / 1048576:.1f} MB RSS\n")
    return EXIT_OK
