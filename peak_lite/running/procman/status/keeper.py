"""The status keeper: the status listener answers through a restart's exec and preload.

A restart execs the manager afresh, and the new image imports and preloads
the application before its loop runs: seconds, for a large app.  A probe
refused meanwhile (Kubernetes' liveness probe, a load balancer's health
check) would take a healthy pool for a dead one.  So:

1. the listening socket is carried across the exec, never closed and bound
   again (``STATUS_CARRY_ENV``, as ``Listeners.carryAcrossExec`` carries the
   app's): a connection waits in its backlog at worst, never refused, and a
   unix socket's file stays in place;
2. right before the exec the manager forks the keeper, a small process that
   serves the status endpoints from the manager's last state on a loop of
   its own, with the listener and the clients it had (half-read requests
   included).  It holds nothing else: every other descriptor is closed (the
   app's listeners, the pid file, the pipes) and no app code runs in it;
3. the new image adopts the socket, and once its loop turns (takeover.py)
   it sends the keeper SIGTERM; the keeper stops accepting and closes its
   end of a pipe, answers what its clients already asked with ``Connection:
   close``, and exits.  The new image accepts only once that pipe reads
   EOF: never both at once, so a client that asks again never sees the
   keeper's older figures after the new image's.  The new image's reaper
   reaps the keeper as the unknown child it is: no worker, no exit counted.

The keeper never outlives its purpose: it dies with the manager
(``PR_SET_PDEATHSIG``, set by ``childBootstrap``), leaves on its own after
``ReloadCheckTimeout`` (a new image that takes longer is stuck), and a
manager whose exec failed kills it (``KeeperProcess.kill``).

What it shows: see laststate.py.

A thread of the new image was the alternative, and a worse one: it would
start only once the interpreter runs again after the exec, it would share
the GIL with the app's imports (a C extension's initialisation holds it for
as long as it likes), and it would be alive at the fork, which the preload
check rightly warns about (a lock it holds then stays locked in every
child).  A process forked before the exec answers from the first moment
and shares nothing with the app.
"""

import gc
import logging
import os
import signal

from zope.interface import implementer

from peak_lite.running.process import childBootstrap, highFd
from peak_lite.running.procman.loop import ManagerLoop
from peak_lite.running.procman.status.interfaces import IStatusKeeper
from peak_lite.running.procman.status.laststate import LastState

log = logging.getLogger('peak_lite.procman')

__all__ = ['startKeeper', 'KeeperProcess', 'STATUS_CARRY_ENV', 'KEEPER_ENV']

STATUS_CARRY_ENV = 'PEAK_PROCMAN_STATUS_FDS'   # the status listener, across the exec
KEEPER_ENV = 'PEAK_PROCMAN_STATUS_KEEPER'      # "PID,FD": the keeper, its pipe's read end
DRAIN_GRACE = 1.0       # seconds the leaving keeper gives its clients to get their answers
# Signals meant for the manager; the keeper has nothing to do with them.
IGNORED = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGTTIN, signal.SIGTTOU)


def startKeeper(service, manager, environ, deadline):
    """Fork the keeper of ``service`` and name it in ``environ``; its IStatusKeeper,
    or None if it could not be forked (the probes then wait in the backlog)."""
    parent = os.getpid()
    # EOF on the read end: the keeper accepts no more (it closed the write end, or died).
    readFd, writeFd = map(highFd, os.pipe())
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        pid = os.fork()
    except OSError as e:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(readFd)
        os.close(writeFd)
        log.warning("no status keeper: fork failed: %s; status requests wait until the "
                    "new image serves", e.strerror)
        return None
    if pid == 0:
        code = 70
        try:
            code = _Keeper(service, manager, parent, deadline, writeFd).run()
        except BaseException:
            log.critical("status keeper %d failed", os.getpid(), exc_info=True)
        finally:
            os._exit(code)       # never back into the manager's code
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    os.close(writeFd)
    os.set_inheritable(readFd, True)
    environ[KEEPER_ENV] = f'{pid},{readFd}'
    log.info("status keeper %d answers on %s until the new image serves", pid,
             service.listener.describe())
    return KeeperProcess(pid, readFd)


@implementer(IStatusKeeper)
class KeeperProcess:
    """See IStatusKeeper."""

    def __init__(self, pid, readFd=None):
        self.pid = pid
        self.readFd = readFd

    def kill(self):
        if self.readFd is not None:
            os.close(self.readFd)
            self.readFd = None
        try:
            # Still our unreaped child (so its pid is not someone else's): kill, reap.
            if os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass                 # reaped already, with the other leftovers


class _Keeper:
    """The keeper process: set up after the fork, serve, leave."""

    def __init__(self, service, manager, parent, deadline, writeFd):
        server = service.server
        keep = {0, 1, 2, service.listener.fileno(), writeFd, *server.clients}
        childBootstrap(parent, closeFds=sorted(_openFds() - keep),
                       title=f"peak procman: status keeper "
                             f"{os.path.basename(manager.cfg.filename)}")
        if 0 not in server.clients and service.listener.fileno() != 0:
            _nullStdin()         # fd 0 may be the app's listener (the FastCGI convention)
        # Objects of the manager still name descriptors closed above, which new
        # sockets may reuse: none of them may be collected and close one.
        gc.disable()
        for signum in IGNORED:
            signal.signal(signum, signal.SIG_IGN)
        self.server = server
        self.writeFd = writeFd
        self.deadline = deadline
        self.leaving = self.done = False
        self.loop = ManagerLoop()
        self.loop.install({signal.SIGTERM: self.tookOver, signal.SIGINT: self.tookOver})
        service.serveFrom(LastState(manager), self.loop)
        self.loop.callLater(deadline, self.expire)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())

    def run(self):
        while not self.done:
            self.loop.runOnce()
            if self.leaving and not self.server.clients:
                self.done = True
        return 0

    def tookOver(self):
        log.info("status keeper %d: the new image serves; leaving", os.getpid())
        self.leave()

    def expire(self):
        log.warning("status keeper %d: the new image has not taken over after %gs "
                    "(ReloadCheckTimeout); leaving: status requests wait until it serves",
                    os.getpid(), self.deadline)
        self.leave()

    def leave(self):
        if self.leaving:
            return
        self.leaving = True
        self.server.drain()
        os.close(self.writeFd)   # EOF: the new image may accept now
        self.loop.callLater(DRAIN_GRACE, self._stop)

    def _stop(self):
        self.done = True


def _openFds():
    return {int(name) for name in os.listdir('/proc/self/fd')}


def _nullStdin():
    null = os.open(os.devnull, os.O_RDONLY)
    if null != 0:
        os.dup2(null, 0)
        os.close(null)
