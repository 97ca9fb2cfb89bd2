"""Forking child processes: templates, proxies, the reaper and the child bootstrap.

What is built before the fork (the template, the parent's resources) is kept
apart from what a child sets up after it (``childBootstrap``).
"""

import _thread
import ctypes
import errno
import fcntl
import logging
import os
import random
import signal
import time

from zope.interface import implementer

from peak_lite.running.interfaces import IProcessProxy, IProcessTemplate
from peak_lite.util import signal_stack

try:
    import setproctitle
except ImportError:  # optional: without it the process titles stay as they are
    setproctitle = None

log = logging.getLogger('peak_lite.running.process')

__all__ = ['ProcessProxy', 'ProcessTemplate', 'Reaper', 'childBootstrap', 'ParentPipe',
           'becomeSubreaper', 'killLeftovers']

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
# The signals a child's bootstrap resets to their default action.
RESET_SIGNALS = (signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT,
                 signal.SIGUSR1, signal.SIGUSR2, signal.SIGTTIN, signal.SIGTTOU)


@implementer(IProcessProxy)
class ProcessProxy:
    """The parent's handle on one child.  See IProcessProxy."""

    def __init__(self, pid):
        self.pid = pid
        self.startedAt = time.monotonic()
        self.isRunning = True
        self.exitStatus = None
        self.exitSignal = None

    def sendSignal(self, sig):
        """See IProcessProxy."""
        if not self.isRunning:
            return False
        try:
            os.kill(self.pid, signal_stack.signalNumber(sig))
        except ProcessLookupError:
            return False
        return True

    def _exited(self, waitStatus):
        self.isRunning = False
        if os.WIFSIGNALED(waitStatus):
            self.exitSignal = os.WTERMSIG(waitStatus)
        else:
            self.exitStatus = os.waitstatus_to_exitcode(waitStatus)

    def describeExit(self):
        if self.isRunning:
            return "running"
        if self.exitSignal is not None:
            return f"killed by {signal.Signals(self.exitSignal).name}"
        return f"exited with status {self.exitStatus}"

    def __repr__(self):
        return f"<ProcessProxy pid={self.pid} {self.describeExit()}>"


class Reaper:
    """The one ``waitpid(-1, WNOHANG)`` loop of a process.

    Call ``reap()`` from the main loop (on SIGCHLD, and on a slow timer as a
    safety net), never from a signal handler.  Pids it does not know are
    reaped silently: as PID 1 we inherit orphans.
    """

    def __init__(self, onExit=None):
        self.proxies = {}
        self.onExit = onExit

    def track(self, proxy):
        self.proxies[proxy.pid] = proxy
        return proxy

    def reap(self):
        """Reap every exited child; return the known proxies that exited."""
        exited = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            if pid == 0:
                break
            proxy = self.proxies.pop(pid, None)
            if proxy is None:
                log.debug("reaped unknown child %d (status %#x)", pid, status)
                continue
            proxy._exited(status)
            exited.append(proxy)
            if self.onExit is not None:
                self.onExit(proxy)
        return exited


def highFd(fd, floor=64):
    """Move ``fd`` to a number >= ``floor`` (close-on-exec), out of the way of the
    low descriptors a child rearranges (0 and 3, 4... for its listeners)."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor)
    os.close(fd)
    return high


class ParentPipe:
    """A pipe whose write end only the parent holds: EOF tells children it died.

    ``PR_SET_PDEATHSIG`` covers Linux; this is the portable check, and it also
    catches the window between fork and prctl.
    """

    def __init__(self):
        self.readFd, self.writeFd = map(highFd, os.pipe())     # both close-on-exec

    def watchInChild(self, onDeath):
        """In a child: close our write end and call ``onDeath()`` at EOF, from a thread."""
        os.close(self.writeFd)
        self.writeFd = None
        fd = self.readFd

        def watch():
            while True:
                try:
                    if not os.read(fd, 1):
                        break
                except InterruptedError:
                    continue
                except OSError:
                    return
            onDeath()
        # Not threading.Thread: its start() waits for the new thread to be
        # scheduled, a context switch on the way to the child's first request.
        _thread.start_new_thread(watch, ())

    def close(self):
        for fd in (self.readFd, self.writeFd):
            if fd is not None:
                os.close(fd)
        self.readFd = self.writeFd = None


def _libc():
    """The C library, loaded once in the parent rather than in every child."""
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


_LIBC = None


def _dieWithParent(parentPid):
    try:
        libc = _libc()
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
    except (OSError, AttributeError):
        log.debug("prctl is not available; relying on the parent pipe", exc_info=True)
    if os.getppid() != parentPid:     # the parent died before prctl took effect
        os._exit(1)


def childBootstrap(parentPid, closeFds=(), parentPipe=None, title=None):
    """Set up a freshly forked child.  Runs right after ``fork()``, in the child,
    with every signal blocked (ProcessTemplate.spawn unblocks them afterwards).

    Pops the parent's signal frames and resets the signals it handled, drops
    the parent's wakeup descriptor, closes the parent's descriptors (a
    selector's included, never unregistering anything from it), arranges to
    die with the parent, reseeds ``random`` and sets the process title.
    Managed database connections are detached by storage's own fork hook.
    """
    signal.set_wakeup_fd(-1)
    signal_stack.resetAfterFork()
    for sig in RESET_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for fd in closeFds:
        try:
            os.close(fd)
        except OSError as e:
            if e.errno != errno.EBADF:
                raise
    _dieWithParent(parentPid)
    if parentPipe is not None:
        parentPipe.watchInChild(lambda: os.kill(os.getpid(), signal.SIGKILL))
    random.seed()
    if title:
        setTitle(title)


def becomeSubreaper():
    """Adopt the orphans of our descendants (Linux), so that none escapes a stop."""
    try:
        libc = _libc()
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_CHILD_SUBREAPER) failed: %s",
                        os.strerror(ctypes.get_errno()))
            return False
    except (OSError, AttributeError):
        log.debug("prctl is not available: orphans go to init", exc_info=True)
        return False
    return True


def leftoverChildren():
    """Pids of our live children (as a subreaper: the orphans we adopted too)."""
    found = []
    try:
        tasks = os.listdir('/proc/self/task')
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f'/proc/self/task/{tid}/children') as f:
                found.extend(int(pid) for pid in f.read().split())
        except OSError:
            continue
    return found


def killLeftovers(known=(), timeout=2.0):
    """SIGKILL every child we have that is not in ``known``, and reap it.

    An orphan of a worker (a daemon it spawned, still holding the listening
    socket, say) must not outlive the pool.  Each round may uncover orphans
    of orphans; rounds stop when none is left or ``timeout`` passes.
    Returns the pids killed.
    """
    killed = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [p for p in leftoverChildren() if p not in known]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        for pid in pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    return killed


def setTitle(title):
    if setproctitle is not None:
        setproctitle.setproctitle(title)


@implementer(IProcessTemplate)
class ProcessTemplate:
    """Fork children that run the command ``makeStub()`` returns.  See IProcessTemplate.

    ``beforeFork()`` runs in the parent right before each fork;
    ``childSetup()`` runs in the child right after it (after the generic
    bootstrap has been done by the caller's ``childSetup``).
    """

    def __init__(self, makeStub, beforeFork=None, childSetup=None):
        self.makeStub = makeStub
        self.beforeFork = beforeFork
        self.childSetup = childSetup

    def spawn(self, parentComponent):
        """See IProcessTemplate.

        Every signal is blocked across ``fork()``: a signal that reached the
        new child before its bootstrap reset the handlers would run the
        parent's handler there, or write to the parent's wakeup pipe.  The
        parent restores its mask at once; the child only after
        ``childSetup()``.  A failed fork raises OSError in the parent.
        """
        if self.beforeFork is not None:
            self.beforeFork()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            pid = os.fork()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            raise
        if pid:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            return ProcessProxy(pid), None
        try:
            if self.childSetup is not None:
                self.childSetup()
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            return None, self.makeStub()
        except BaseException:
            # A child must never return into the parent's code on failure.
            log.critical("child %d failed to start", os.getpid(), exc_info=True)
            os._exit(70)
