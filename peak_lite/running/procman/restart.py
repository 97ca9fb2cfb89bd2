"""Restarting the manager in place: check the new config and code, then exec afresh.

The listening sockets and the pid-file lock are carried across the exec, so
connections wait in the backlog and no second manager can slip in.
"""

import logging
import os
import sys
import tempfile

from peak_lite.running.process import ProcessProxy
from peak_lite.running.sockets import CARRY_ENV
from peak_lite.util.lockfile import PidFile

log = logging.getLogger('peak_lite.procman')

__all__ = ['startCheck', 'readCheck', 'reexec']


def managerArgv():
    """The command line this manager was started with, interpreter first."""
    return list(getattr(sys, 'orig_argv', None) or [sys.executable] + sys.argv)


def startCheck(environ, listeners):
    """Start ``peak procman --check`` with our own argv; return (proxy, output file).

    It runs with posix_spawn, not subprocess: the manager's reaper owns
    waitpid(-1).  Without Listen, the check finds the socket on fd 0, as the
    new manager will.
    """
    out = tempfile.TemporaryFile()
    argv = managerArgv()
    check = [argv[0]] + _withCheck(argv[1:])
    null = os.open(os.devnull, os.O_RDONLY)
    stdin = listeners.fds()[0] if listeners.sockets else null
    try:
        pid = os.posix_spawn(sys.executable, check, _withoutCarried(environ),
                             file_actions=[(os.POSIX_SPAWN_DUP2, stdin, 0),
                                           (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                                           (os.POSIX_SPAWN_DUP2, out.fileno(), 2)])
    finally:
        os.close(null)
    return ProcessProxy(pid), out


def readCheck(proxy, out):
    """(ok, reason) of a finished check."""
    out.seek(0)
    text = out.read().decode('utf-8', 'replace').strip()
    out.close()
    if proxy.exitStatus == 0:
        return True, None
    return False, (text.splitlines()[-1] if text else proxy.describeExit())


def reexec(environ, listeners, pidfile, pid):
    """exec the manager afresh; returns only if exec failed (after logging why)."""
    env = dict(environ)
    listeners.carryAcrossExec(env)
    if pidfile is not None:
        pidfile.inheritAcrossExec(env)
    argv = managerArgv()
    log.info("manager %d restarting: exec %s", pid, ' '.join(argv))
    sys.stderr.flush()
    try:
        os.execve(sys.executable, argv, env)
    except OSError as e:
        log.critical("restart failed: exec %s: %s; stopping", sys.executable, e.strerror)


def _withCheck(args):
    """argv (after the interpreter) with ``--check`` put right after ``procman``."""
    args = list(args)
    for i, word in enumerate(args):
        if word == 'procman':
            return args[:i + 1] + ['--check'] + args[i + 1:]
    return args[:1] + ['--check'] + args[1:]


def _withoutCarried(environ):
    env = dict(environ)
    for name in (CARRY_ENV, PidFile.ENV, 'NOTIFY_SOCKET', 'LISTEN_FDS', 'LISTEN_PID'):
        env.pop(name, None)
    return env
