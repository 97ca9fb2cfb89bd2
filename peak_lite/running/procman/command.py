"""``peak procman CONFIG [child args...]``: the process manager's command."""

import logging
import os
import signal

from peak_lite.running.abstract import AbstractCommand
from peak_lite.running.interfaces import EXIT_OK, InvocationError, RunningError
from peak_lite.running.options import Flag
from peak_lite.running.process import setTitle
from peak_lite.running.trampoline import oneLine
from peak_lite.running.procman import control
from peak_lite.running.procman.generation import CARRY_GENERATION
from peak_lite.running.procman.restart import takeCarriedConfig
from peak_lite.running.procman.config import loadConfig, probeResources
from peak_lite.running.procman.handover import Handover
from peak_lite.running.procman.hugepages import collapseHeap
from peak_lite.running.procman.interfaces import ConfigError, ProcmanError
from peak_lite.running.procman.manager import HELD_SIGNALS, Manager
from peak_lite.running.procman.logs import StdErr, setupLogging
from peak_lite.running.procman.preload import checkApp, preload
from peak_lite.running.procman.scoreboard import checkSemaphore
from peak_lite.running.procman.status.takeover import holdCarried
from peak_lite.running.sockets import Listeners, SocketError
from peak_lite.util.interfaces import AlreadyLocked, LockError
from peak_lite.util.lockfile import PidFile

log = logging.getLogger('peak_lite.procman')

__all__ = ['ProcessManager']

class ProcessManager(AbstractCommand):
    """Run a pool of preforked children from a procman config file"""

    usage = """
Usage: peak procman [options] CONFIG [child arguments...]

Builds the config's Command once, then forks children that share it, keeping
between MinProcesses and MaxProcesses of them as load changes.  Arguments
after CONFIG are appended to the Command.  Signals to the manager: HUP
restarts, TERM/INT stop gracefully, QUIT stops quickly, USR1 reopens StdErr,
TTIN/TTOU raise/lower the floor.  See docs/procman.md.
"""

    check = Flag('--check', help="check the config and preload the app without forking")
    status = Flag('--status', help="show the pool of the manager this config runs")
    asJSON = Flag('--json', help="with --status: print JSON instead of a table")
    stop = Flag('--stop', help="stop the running manager gracefully and wait for it")
    reload = Flag('--reload', help="tell the running manager to restart (SIGHUP) and wait "
                                   "for its verdict")
    replace = Flag('--replace', help="stop a running manager first, then take over")

    def _run(self):
        if not self.args:
            raise InvocationError("procman: missing CONFIG; Usage: peak procman [options] "
                                  "CONFIG [child arguments...]")
        path, extra = self.args[0], self.args[1:]
        try:
            # A reload's check and its new image parse the bytes the check read.
            cfg = loadConfig(path, extra, data=takeCarriedConfig(self.environ))
            if self.status:
                return control.showStatus(cfg, self.stdout, self.asJSON)
            if self.stop:
                return control.stopManager(cfg, self.stdout)
            if self.reload:
                return control.reloadManager(cfg, self.stdout)
            checkSemaphore(cfg)
            if self.check:
                return self.checkOnly(cfg)
            return self.serve(cfg)
        except ConfigError as e:
            raise InvocationError(str(e)) from None
        except ProcmanError as e:
            raise InvocationError(f"{path}: {e}") from None

    def io(self):
        return dict(stdin=self.stdin, stdout=self.stdout, stderr=self.stderr,
                    environ=self.environ)

    def checkOnly(self, cfg):
        probeResources(cfg)
        listeners = openListeners(cfg, dict(self.environ)) if not cfg.Listen else None
        subject = preload(cfg, self.io())
        self._checkSocket(cfg, subject, listeners is None or listeners.sockets)
        checkApp(cfg, subject)
        self.stdout.write(f"{cfg.filename}: configuration OK; Command "
                          f"{' '.join(cfg.Command)} loaded\n")
        return EXIT_OK

    def serve(self, cfg):
        # Until the manager's loop handles them, these signals' default action
        # would kill us (during preload, or right after a restart's exec, which
        # keeps this mask): hold them pending.  Manager.run() lets them in.
        signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
        environ = self.environ
        title = f"peak procman: master {os.path.basename(cfg.filename)}"
        setTitle(title)
        self.handover = None
        pidfile = self._takePidFile(cfg, environ)
        stderr = StdErr(cfg.StdErr)
        terminal = os.dup(2)
        try:
            listeners = openListeners(cfg, environ, _fileno(self.stdin))
            statusFds = holdCarried(environ)    # the status listener: see status/keeper.py
            stderr.point(cfg)
            setupLogging()
            failed = None
            try:
                subject = preload(cfg, self.io(), listeners.fds() + statusFds)
                self._checkSocket(cfg, subject, listeners.sockets)
            except Exception as e:
                if not environ.get(CARRY_GENERATION):
                    raise
                # A reload whose code changed after its check passed: the children
                # carried across the exec keep serving (see generation.py).
                subject, failed = None, oneLine(e)
            if subject is not None and cfg.HugePages:
                collapseHeap()
            if self.handover is not None:
                self.handover.complete()
            manager = Manager(cfg, subject, listeners, pidfile, stderr, environ,
                              'peak procman', loadFailure=failed)
        except BaseException as e:
            if pidfile is not None and os.getpid() == pidfile.owner:
                pidfile.remove()
            if cfg.StdErr and isinstance(e, Exception):
                # The StdErr file gets the error too; whoever started us sees it here.
                _tell(terminal, f"procman: {oneLine(e)} (see {cfg.StdErr})")
            raise
        finally:
            os.close(terminal)
        return manager.run()

    def _checkSocket(self, cfg, subject, haveSocket):
        serves = getattr(subject, 'usesInheritedSocket', False)
        if cfg.Standby and not serves:
            raise cfg.errorAt('Standby', f"Standby needs a gateway Command that serves the "
                              f"Listen socket (CGI or HTTP); Command "
                              f"{' '.join(cfg.Command)} is not one, so its children cannot "
                              f"wait for their turn: remove the Standby line")
        if not haveSocket and serves:
            raise cfg.errorAt('Command', f"Command {' '.join(cfg.Command)} serves a socket, "
                              f"but there is none: add a Listen line (for example "
                              f"'Listen unix:/run/myapp.sock' or 'Listen 127.0.0.1:8000'), "
                              f"or start procman with a listening socket on fd 0")

    def _takePidFile(self, cfg, environ):
        if cfg.PidFile is None:
            return None
        adopted = PidFile.fromEnvironment(environ, cfg.PidFile)
        environ.pop(PidFile.ENV, None)
        if adopted is not None:
            adopted.owner = os.getpid()
            return adopted
        pidfile = PidFile(cfg.PidFile)
        try:
            pidfile.create()
        except AlreadyLocked as e:
            if not self.replace:
                raise RunningError(f"{cfg.filename}: a manager is already running as pid "
                                   f"{e.pid} (PidFile {cfg.PidFile}); stop it with "
                                   f"'peak procman --stop {cfg.filename}' or use --replace")
            self.handover = Handover(cfg, pidfile, self.stderr)
            self.handover.prepare(environ)
        except LockError as e:
            raise cfg.errorAt('PidFile', str(e)) from None
        pidfile.owner = os.getpid()
        return pidfile


def openListeners(cfg, environ, stdin=0):
    """Listeners.open for ``cfg``; an address that cannot be opened is a FILE:LINE error."""
    try:
        return Listeners.open(cfg.Listen, environ, stdin, cfg.ListenOwner)
    except SocketError as e:
        lineno = getattr(e.address, 'lineno', None) or cfg.lineOf('Listen') or 1
        raise ConfigError(f"Listen {e}", cfg.filename, lineno) from None


def _tell(fd, line):
    try:
        os.write(fd, (line + '\n').encode('utf-8', 'replace'))
    except OSError:
        pass        # nobody is listening there any more


def _fileno(stream):
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return 0
