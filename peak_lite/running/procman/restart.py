"""Restarting the manager in place: check the new config and code, then exec afresh.

The listening sockets and the pid-file lock are carried across the exec, so
connections wait in the backlog and no second manager can slip in.  The
signals the manager holds stay blocked from the moment its loop stops
through ``execve`` (the mask survives exec), so none reaches its default
action in between; the new manager handles them once its loop runs.
"""

import logging
import os
import sys
import tempfile

from peak_lite.running.process import ProcessProxy
from peak_lite.running.sockets import CARRY_ENV
from peak_lite.util.lockfile import PidFile

log = logging.getLogger('peak_lite.procman')

__all__ = ['startCheck', 'readCheck', 'reexec', 'ReloadCheck']


class ReloadCheck:
    """The check a SIGHUP starts before the restart: one at a time, with a deadline.

    A SIGHUP while a check runs is logged and coalesced: when the running
    check ends, whatever its outcome, one more check starts, so the restart
    follows the files as they are after the last SIGHUP.  A check that runs
    longer than ``timeout`` seconds is killed and the restart refused.
    ``onStart()`` is called as each check starts, ``onOutcome(ok, reason)``
    with the final outcome.
    """

    def __init__(self, environ, listeners, timeout, loop, reaper, onOutcome, onStart=None):
        self.environ = environ
        self.listeners = listeners
        self.timeout = timeout
        self.loop = loop
        self.reaper = reaper
        self.onOutcome = onOutcome
        self.onStart = onStart
        self.proxy = self.out = self.timer = None
        self.again = False
        self.expired = False

    @property
    def running(self):
        return self.proxy is not None

    def request(self):
        """A SIGHUP: start a check, or ask for one more after the running one."""
        if self.proxy is not None:
            log.info("SIGHUP while the reload check is running (pid %d): one more check "
                     "will follow it", self.proxy.pid)
            self.again = True
            return
        self._start()

    def _start(self):
        self.proxy, self.out = startCheck(self.environ, self.listeners)
        self.reaper.track(self.proxy)
        self.expired = False
        self.timer = self.loop.callLater(self.timeout, self._expire)
        if self.onStart is not None:
            self.onStart()
        log.info("SIGHUP: checking the config and application before restarting (pid %d)",
                 self.proxy.pid)

    def _expire(self):
        self.expired = True
        log.error("the reload check (pid %d) is still running after %gs "
                  "(ReloadCheckTimeout): killing it", self.proxy.pid, self.timeout)
        self.proxy.sendSignal('SIGKILL')

    def owns(self, proxy):
        return proxy is self.proxy

    def exited(self, proxy):
        """The reaper saw the check exit: act on it, or start the coalesced one."""
        self.timer.cancel()
        ok, reason = readCheck(proxy, self.out)
        if self.expired:
            ok, reason = False, (f"the check took longer than ReloadCheckTimeout "
                                 f"({self.timeout:g}s) and was killed")
        self.proxy = self.out = self.timer = None
        if self.again:
            self.again = False
            log.info("checking again for the SIGHUP that arrived during the check")
            self._start()
            return
        self.onOutcome(ok, reason)

    def kill(self):
        """Stopping the manager: no check outlives it."""
        self.again = False
        if self.proxy is not None:
            log.info("killing the reload check (pid %d)", self.proxy.pid)
            self.proxy.sendSignal('SIGKILL')


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
