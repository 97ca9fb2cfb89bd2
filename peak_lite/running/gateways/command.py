"""The gateway command: pick CGI, FastCGI or HTTP, then serve until the main loop stops."""

import logging
import os
import sys
import wsgiref.handlers

from zope.interface import implementer

from peak_lite.binding import lookupComponent
from peak_lite.running.gateways.fcgi_server import FastCGIConnection
from peak_lite.running.gateways.handoff import HandoffPool
from peak_lite.running.gateways.http_server import HTTPConnection
from peak_lite.running.gateways.interfaces import IGatewayApp
from peak_lite.running.gateways.sniff import SniffingConnection
from peak_lite.running.gateways.worker import Worker
from peak_lite.running.interfaces import (
    EXIT_OK, ICmdLineApp, IMainLoop, IRerunnableCGI, IStandbyStatus, IWaitingWork,
    IWorkerStatus, InvocationError)
from peak_lite.running.mainloop import MainLoop
from peak_lite.running.sockets import inheritedListeners, listenOn
from peak_lite.running.workerstatus import getWorkerStatus
from peak_lite.util.signal_stack import signalNumber

log = logging.getLogger('peak_lite.running.gateways')

__all__ = ['GatewayCommand', 'CGIRequestHandler', 'FASTCGI', 'HTTP', 'CGI']

CGI, FASTCGI, HTTP = 'CGI', 'FastCGI', 'HTTP'
# CGI mode serves whatever arrives on inherited sockets: FastCGI, or HTTP for a curl.
_FACTORIES = {FASTCGI: FastCGIConnection, HTTP: HTTPConnection, CGI: SniffingConnection}


def _stoppedGracefully(mainLoop):
    """True unless the loop stopped for a signal its handler treats as "stop now"."""
    signum = getattr(mainLoop, 'lastSignal', None)
    if signum is None:
        return True
    urgent = getattr(getattr(mainLoop, 'signalHandler', None), 'interruptSignals', ())
    return signum not in {signalNumber(name) for name in urgent}


class CGIRequestHandler(wsgiref.handlers.BaseCGIHandler):
    """wsgiref's CGIHandler on the streams it is given instead of sys.*."""

    origin_server = False
    os_environ = {}     # the environ given is the whole CGI environment


def _binary(stream):
    return getattr(stream, 'buffer', stream)


@implementer(ICmdLineApp, IRerunnableCGI, IGatewayApp, IWaitingWork)
class GatewayCommand:
    """See IGatewayApp.

    ``GatewayCommand(app, protocol=CGI, socket=None, parentComponent=None,
    stdin=None, stdout=None, stderr=None, environ=None, mainLoop=None,
    status=None, readTimeout=30.0, idleTimeout=0)``.  ``protocol`` CGI serves
    FastCGI when fd 0 is a listening socket and one plain CGI request
    otherwise; FastCGI and HTTP serve on ``socket`` (a spec) or on fd 0.
    """

    def __init__(self, app, protocol=CGI, socket=None, parentComponent=None, stdin=None,
                 stdout=None, stderr=None, environ=None, mainLoop=None, status=None,
                 readTimeout=30.0, idleTimeout=0):
        self.app = app
        self.protocol = protocol
        self.socket = socket
        self.parentComponent = parentComponent
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.environ = environ
        self.mainLoop = mainLoop
        self.status = status
        self.readTimeout = readTimeout
        self.idleTimeout = idleTimeout or (15.0 if protocol == HTTP else 0)
        self.stdin = stdin if stdin is not None else sys.stdin
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self.environ = environ if environ is not None else os.environ
        # Made now, while this is built in a process manager's parent: every
        # worker forked from it shares the queue (see handoff.py).
        self.pool = HandoffPool()

    def waitingFds(self):
        """See IWaitingWork: the workers' hand-off queue (handoff.py)."""
        return [self.pool.receiver.fileno()]

    @property
    def usesInheritedSocket(self):
        """True when it serves sockets handed over on fd 0 (a process manager's or a web server's)."""
        return self.socket is None

    def run(self):
        """See ICmdLineApp: serve until stopped, or one CGI request; return the exit code."""
        if self.socket is not None:
            listeners = [listenOn(self.socket)]     # SocketError is an InvocationError
        else:
            listeners = inheritedListeners(self.environ or os.environ, release=True)
        if not listeners:
            if self.protocol != CGI:
                raise InvocationError(
                    f"{self.protocol}: fd 0 is not a listening socket; give a socket"
                    " (unix:/path, host:port or [v6]:port) or run it under a process"
                    " manager that passes one")
            return self.runCGI(self.stdin, self.stdout, self.stderr, self.environ)
        try:
            return self.serve(*listeners)
        finally:
            for listener in listeners:
                listener.close()

    def serve(self, *listeners):
        """Serve on ``listeners`` (listening sockets) until the main loop stops."""
        mainLoop = self._mainLoop()
        status = self._status()
        workers = [Worker(listener, _FACTORIES[self.protocol], self.app, mainLoop, status,
                          self.readTimeout, self.idleTimeout, self.pool)
                   for listener in listeners]

        def begin(woken=False):
            for worker in workers:
                worker.start()
            self.pool.install(workers, mainLoop.eventLoop)
            if woken:       # from the running loop, a connection likely waiting already
                for worker in workers:
                    worker.acceptNow()

        if IStandbyStatus.providedBy(status):
            status.whenNeeded(mainLoop, begin)      # a process manager's standby waits
        else:
            begin()
        try:
            return mainLoop.run()
        finally:
            self.pool.uninstall()
            graceful = _stoppedGracefully(mainLoop)
            for worker in workers:
                if graceful:
                    worker.drain()
                worker.close()

    def runCGI(self, stdin, stdout, stderr, environ, argv=()):
        """See IRerunnableCGI: one RFC 3875 request through wsgiref."""
        handler = CGIRequestHandler(_binary(stdin), _binary(stdout), stderr, dict(environ),
                                    multithread=False, multiprocess=True)
        handler.run(self.app)
        return EXIT_OK

    def _mainLoop(self):
        if self.mainLoop is None:
            found = self._lookup(IMainLoop)
            self.mainLoop = found if found is not None else MainLoop(self.parentComponent)
        return self.mainLoop

    def _status(self):
        # Asked for in serve(), after any fork: a process manager installs
        # each child's status there.
        if self.status is None:
            found = self._lookup(IWorkerStatus)
            if found is None:
                found = getWorkerStatus()
            self.status = found
        return self.status

    def _lookup(self, iface):
        if self.parentComponent is None:
            return None
        return lookupComponent(self.parentComponent, iface, default=None)
