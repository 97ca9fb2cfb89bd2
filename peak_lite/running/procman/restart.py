"""Restarting the manager in place: check the new config and code, then exec afresh.

The listening sockets and the pid-file lock are carried across the exec, so
connections wait in the backlog and no second manager can slip in.  The
signals the manager holds stay blocked from the moment its loop stops
through ``execve`` (the mask survives exec), so none reaches its default
action in between; the new manager handles them once its loop runs.

The config file is read once per reload, as its check starts, into a sealed
memfd: the check parses those bytes (on fd 3, named by ``CONFIG_FD_ENV``), and
so does the image exec'd after it passed.  An edit made after the check
started waits for the next reload; it never runs unchecked.
"""

import fcntl
import logging
import os
import sys
import tempfile

from peak_lite.running.process import ProcessProxy
from peak_lite.running.procman.status.keeper import KEEPER_ENV, STATUS_CARRY_ENV
from peak_lite.running.sockets import CARRY_ENV
from peak_lite.util.lockfile import PidFile

log = logging.getLogger('peak_lite.procman')

__all__ = ['startCheck', 'readCheck', 'reexec', 'ReloadCheck', 'takeCarriedConfig',
           'CONFIG_FD_ENV']

CONFIG_FD_ENV = 'PEAK_PROCMAN_CONFIG_FD'
CHECK_CONFIG_FD = 3         # where the check finds the bytes it checks
MAX_CONFIG = 1 << 20        # more than the parser accepts: it reports the size


class ReloadCheck:
    """The check a SIGHUP starts before the restart: one at a time, with a deadline.

    A SIGHUP while a check runs is logged and coalesced: when the running
    check ends, whatever its outcome, one more check starts, so the restart
    follows the files as they are after the last SIGHUP.  A check that runs
    longer than ``timeout`` seconds is killed and the restart refused.
    ``onStart()`` is called as each check starts, ``onOutcome(ok, reason)``
    with the final outcome.
    """

    def __init__(self, environ, listeners, timeout, loop, reaper, onOutcome, onStart=None,
                 configPath=None):
        self.environ = environ
        self.configPath = configPath
        self.configFd = None         # the bytes the running (or last passed) check read
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
        self.dropConfig()
        self.configFd = snapshotConfig(self.configPath) if self.configPath else None
        self.proxy, self.out = startCheck(self.environ, self.listeners, self.configFd)
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
        if not ok:
            self.dropConfig()
        if self.again:
            self.again = False
            log.info("checking again for the SIGHUP that arrived during the check")
            self._start()
            return
        self.onOutcome(ok, reason)

    def takeConfig(self):
        """The descriptor of the bytes the passed check read (the caller owns it)."""
        fd, self.configFd = self.configFd, None
        return fd

    def dropConfig(self):
        if self.configFd is not None:
            os.close(self.configFd)
            self.configFd = None

    def kill(self):
        """Stopping the manager: no check outlives it."""
        self.again = False
        self.dropConfig()
        if self.proxy is not None:
            log.info("killing the reload check (pid %d)", self.proxy.pid)
            self.proxy.sendSignal('SIGKILL')


def managerArgv():
    """The command line this manager was started with, interpreter first."""
    return list(getattr(sys, 'orig_argv', None) or [sys.executable] + sys.argv)


def snapshotConfig(path):
    """A sealed, close-on-exec memfd holding the file at ``path`` as it is now; None
    if it cannot be read (the check then reads the file and reports why)."""
    try:
        with open(path, 'rb') as f:
            data = f.read(MAX_CONFIG)
    except OSError:
        return None
    fd = os.memfd_create('procman-config', os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK
                    | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    except OSError:
        os.close(fd)
        return None
    return fd


def takeCarriedConfig(environ):
    """The config bytes a reload carried (to its check or its new image), or None."""
    text = environ.pop(CONFIG_FD_ENV, None)
    if not text:
        return None
    try:
        fd = int(text)
        chunks, offset = [], 0
        while True:
            chunk = os.pread(fd, 65536, offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
        os.close(fd)
    except (ValueError, OSError):
        return None
    return b''.join(chunks)


def startCheck(environ, listeners, configFd=None):
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
    env = _withoutCarried(environ)
    actions = [(os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
               (os.POSIX_SPAWN_DUP2, out.fileno(), 2)]
    if configFd is not None:
        actions.append((os.POSIX_SPAWN_DUP2, configFd, CHECK_CONFIG_FD))
        env[CONFIG_FD_ENV] = str(CHECK_CONFIG_FD)
    try:
        pid = os.posix_spawn(sys.executable, check, env, file_actions=actions)
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


def reexec(environ, listeners, pidfile, pid, configFd=None, status=None):
    """exec the manager afresh; returns only if exec failed (after logging why).

    ``configFd``: the config bytes the reload's check passed, for the new image.
    ``status``: the IStatusService, carried across the exec by its keeper; the
    caller closes it if exec fails.
    """
    env = dict(environ)
    if configFd is not None:
        os.set_inheritable(configFd, True)
        env[CONFIG_FD_ENV] = str(configFd)
    listeners.carryAcrossExec(env)
    if status is not None:
        status.carryAcrossExec(env)     # forks the status keeper: see status/keeper.py
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
    for name in (CARRY_ENV, PidFile.ENV, 'NOTIFY_SOCKET', 'LISTEN_FDS', 'LISTEN_PID',
                 CONFIG_FD_ENV, 'PEAK_PROCMAN_GENERATION', STATUS_CARRY_ENV, KEEPER_ENV):
        env.pop(name, None)
    return env
