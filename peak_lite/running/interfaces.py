"""Contracts and exceptions of the running layer: commands, main loop, processes."""

from zope.interface import Attribute, Interface

# Exit statuses of commands and of the ``peak`` script
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2          # usage or configuration error: one line on stderr
EXIT_LOAD_FAILED = 3    # the application failed to load


class RunningError(Exception):
    """Base class of errors raised by peak_lite.running."""

    exitCode = EXIT_FAILURE


class InvocationError(RunningError):
    """The command line or configuration is wrong; reported as one line, exit 2."""

    exitCode = EXIT_USAGE


class LoadError(RunningError):
    """The application could not be built; reported as one line, exit 3."""

    exitCode = EXIT_LOAD_FAILED


class SocketError(InvocationError):
    """A socket spec is malformed, or its socket cannot be opened; exit 2.

    ``address`` is the ISocketAddress concerned, or None when the spec did
    not parse.  The message names the address and what to do.
    """

    def __init__(self, message, address=None):
        super().__init__(message)
        self.address = address


class ISocketAddress(Interface):
    """One parsed socket spec: ``unix:PATH[:MODE]``, ``HOST:PORT``, ``[V6]:PORT`` or ``fd:N``.

    Instances are immutable and compare equal when they name the same socket.
    ``str()`` gives back the canonical spec.
    """

    kind = Attribute("'unix', 'tcp' or 'fd'")
    path = Attribute("kind 'unix': path of the socket file; otherwise None")
    mode = Attribute("kind 'unix': permission bits (int) given to the socket file; "
                     "otherwise None")
    host = Attribute("kind 'tcp': the host or address text, without brackets; "
                     "otherwise None")
    port = Attribute("kind 'tcp': the port (int, 0-65535); otherwise None")
    family = Attribute("kind 'tcp': 'inet6' when host is an IPv6 address, else 'inet'; "
                       "otherwise None")
    fd = Attribute("kind 'fd': an inherited descriptor number (int); otherwise None")
    lineno = Attribute("line of the config file the address was given on, or None")


class IListener(Interface):
    """One listening socket and the address it was opened for.

    A unix socket file is only ever changed (mode, owner) or removed while
    its path still names the very inode the socket was bound as.
    """

    sock = Attribute("the listening socket.socket")
    address = Attribute("the ISocketAddress it was opened or adopted for, or None when "
                        "it was inherited without one")
    fileId = Attribute("(st_dev, st_ino) of the unix socket file this process bound, "
                       "else None")

    def fileno():
        """The socket's descriptor."""

    def matches(address):
        """True if this socket is the one ``address`` names: the same unix path; the
        same family, address and port (any port for port 0); or the same descriptor."""

    def ownsFile():
        """True if the unix path still names the file this socket was bound as."""

    def update(address, owner=None):
        """Adopt ``address`` and give the socket file its mode and ``owner`` ((uid, gid),
        -1 leaving one), through the bound inode only; a path that names anything else
        is left alone and logged.  Never raises for the file."""

    def close(unlink=True):
        """Close the socket; with ``unlink`` remove its file if ownsFile()."""

    def describe():
        """A short text for logs: ``unix:PATH`` or ``HOST:PORT``."""


class IListeners(Interface):
    """A process manager's listening sockets, in config order.

    Built by ``Listeners.open(addresses, environ, stdin=0, owner=None,
    carryName=CARRY_ENV)``, which adopts sockets carried across the manager's
    own exec by full address, closes the carried ones no address names, then
    binds the rest; without addresses it inherits (carried, systemd's
    ``LISTEN_FDS``, or a listening fd 0).  ``Listeners.carried(environ,
    carryName)`` takes the carried ones only.
    """

    listeners = Attribute("list of IListener")
    sockets = Attribute("list of their socket.socket objects")
    inherited = Attribute("True when a socket was open before this process: carried "
                          "across its exec or handed over by its predecessor, systemd's, "
                          "or fd 0.  Connections may have queued on it meanwhile")

    def fds():
        """Their descriptors, in order."""

    def carryAcrossExec(environ, carryName='PEAK_PROCMAN_FDS'):
        """Make the descriptors inheritable and record them (address and file identity
        too) in ``environ[carryName]`` for the manager that exec will start."""

    def installInChild():
        """In a forked child: move the sockets to fds 0, 3, 4... and set
        ``PEAK_LISTEN_FDS``."""

    def close(unlink=True):
        """Close every socket; with ``unlink`` remove the unix socket files still ours."""

    def describe():
        """The addresses, comma-separated, or 'no socket'."""


class ICmdLineApp(Interface):
    """A runnable command-line application."""

    def run():
        """Run and return an exit code (an int), or a command factory for the trampoline."""


class ICmdLineAppFactory(Interface):
    """Makes ICmdLineApp objects."""

    def __call__(parentComponent, componentName=None, argv=None, stdin=None,
                 stdout=None, stderr=None, environ=None, **attrs):
        """Return an ICmdLineApp using exactly the I/O given (never sys.*)."""


class IRerunnableCGI(Interface):
    """Serves one CGI-style request per call, and may be called again."""

    def runCGI(stdin, stdout, stderr, environ, argv=()):
        """Serve one request read from ``stdin``/``environ``; write the response to ``stdout``."""


class IWaitingWork(Interface):
    """A command whose forked children share a queue of work for whichever is idle
    (the gateways' hand-off queue of kept-alive connections).  A process manager
    counts what waits there as load, as it counts a listening socket's backlog."""

    def waitingFds():
        """Descriptors readable while work waits there for an idle child.  A
        process manager only polls them; it never reads them."""


class IWSGIApplication(Interface):
    """A PEP 3333 application: ``app(environ, start_response) -> iterable of bytes``."""

    def __call__(environ, start_response):
        """Serve one request."""


class IExecutable(Interface):
    """Documentation only.

    A thing is executable if it adapts to ICmdLineAppFactory, ICmdLineApp,
    IRerunnableCGI or IWSGIApplication, or is a zero-argument callable that
    returns an exit code.
    """


class IMainLoop(Interface):
    """The event loop a command runs on (asyncio underneath)."""

    eventLoop = Attribute("The asyncio event loop, for readers, timers and tasks")
    lastActivity = Attribute("time.monotonic() of the last activity, or None while not running")

    def run(stopAfter=0, idleTimeout=0, runAtLeast=0):
        """Run until stopped and return the exit code given to exitWith (default 0).

        For each argument 0 means off.  ``stopAfter``: stop after that many
        seconds.  ``idleTimeout``: stop after that long without
        activityOccurred(), but never before ``runAtLeast`` seconds have passed.
        While running, the ``signalHandler`` (config property
        ``peak.running.mainLoop.signalHandler``) is pushed with pushSignals
        behind a deferring proxy, and popped on return.
        """

    def activityOccurred():
        """Note activity now (resets the idle timeout)."""

    def exitWith(exitCode):
        """Make run() return ``exitCode``, which may be a command factory (for the trampoline)."""

    def stop():
        """Make run() return its current exit code (0 unless exitWith was called)."""


class ISignalHandler(Interface):
    """An object whose methods named after signals (SIGHUP, SIGTERM, ...) handle them.

    Under a MainLoop each method is called as a loop callback with
    ``(signum, frame)``, never inside the OS-level handler.
    """


class IWorkerStatus(Interface):
    """How a worker reports its state to whatever supervises it.

    Gateways call ``busy()`` around each request.  Without a supervisor the
    implementation is a cheap no-op.  It must not make a system call per request.
    """

    stopping = Attribute("True once the worker has been asked to stop gracefully, or while "
                         "it waits to be replaced at its request limit: it takes no new "
                         "connection, and each response closes its connection")

    def busy(line=None):
        """Return a context manager marking this worker busy for one request, idle after.

        ``line`` (str or bytes), when given, says what the request is (``GET
        /path``), for status pages.  When the context ends, the request is
        counted with its duration and with the code ``responded()`` recorded.
        """

    def responded(code):
        """Record the HTTP status code (an int) of the request in progress.

        Counted by class (2xx to 5xx) when ``busy()``'s context ends; a request
        without a code is counted only in the totals.  A plain store.
        """


class IStandbyStatus(IWorkerStatus):
    """A worker status that can hold its worker back until it is needed.

    A process manager's standby child (forked ahead, set up, its loop
    running, not serving) has one.
    """

    def whenNeeded(mainLoop, begin):
        """Call ``begin(woken)`` (start accepting) once this worker may serve.

        At once with ``woken`` False; or, for a standby, from ``mainLoop``'s
        running loop with ``woken`` True once it is woken.  A standby no
        longer needed stops ``mainLoop`` instead.  A gateway calls it once,
        set up, before it runs ``mainLoop``.
        """


class IProcessProxy(Interface):
    """The parent's handle on one child process."""

    pid = Attribute("The child's pid")
    isRunning = Attribute("True until the child has been reaped")
    exitStatus = Attribute("The exit code, or None if running or killed by a signal")
    exitSignal = Attribute("The number of the signal that killed it, or None")

    def sendSignal(sig):
        """Send a signal given by name ('SIGHUP', 'HUP') or number; False if already gone."""


class IProcessTemplate(Interface):
    """Something that can start child processes."""

    def spawn(parentComponent):
        """Fork.

        In the parent return ``(proxy, None)``.  In the child return
        ``(None, stub)``, where ``stub`` is the command the child must run; the
        caller hands it to the runMain trampoline (``mainLoop.exitWith(stub)``)
        so that nothing of the parent stays on the child's stack.
        """


class IMainLoopExtras(IMainLoop):
    """What MainLoop offers beyond IMainLoop, for signal handlers and forked children."""

    signalHandler = Attribute(
        "The ISignalHandler pushed while run() is active: the config property"
        " peak.running.mainLoop.signalHandler, else StopOnStandardSignals; a class is"
        " called with the main loop to make it")

    def stopAfterCurrent():
        """From a signal method: stop once the task running when the signal arrived is done.

        A task waiting on I/O or a timer is not running; with no task running,
        stop now.  (The callback that was running has returned already, since
        signal methods run as loop callbacks.)
        """

    def forgetAfterFork():
        """In a forked child: abandon the inherited asyncio loop without touching the parent's.

        Never unregisters from the inherited epoll set (shared with the parent);
        closes the child's copies of its descriptors and keeps the loop object
        alive so that no destructor runs.
        """

    def close():
        """Close an asyncio loop made by ``eventLoop`` but never run; run() closes its own."""
