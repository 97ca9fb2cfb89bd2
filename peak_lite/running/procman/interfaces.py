"""Contracts and exceptions of the process manager."""

from zope.interface import Attribute, Interface

from peak_lite.running.interfaces import ISocketAddress


class ProcmanError(Exception):
    """Base class of every error raised by peak_lite.running.procman."""


class ConfigError(ProcmanError):
    """A procman config file could not be read, parsed or validated.

    ``filename`` is the config file's path and ``lineno`` the 1-based line the
    problem is on; an error that belongs to no line (a missing key, an
    unreadable file) uses line 1, or the start line of the section it belongs
    to.  ``message`` is the bare description, without the location.

    ``str()`` is one line, ``FILE:LINE: message``, ready to show a user; the
    message says what was expected, what was found and, where one exists, the
    remedy.
    """

    def __init__(self, message, filename, lineno=1):
        self.message = message
        self.filename = filename
        self.lineno = lineno
        super().__init__(f"{filename}:{lineno}: {message}")


# -- config ---------------------------------------------------------------

#: One parsed ``Listen`` value, a socket the manager opens for its children:
#: the socket specs of peak_lite.running.sockets (see ISocketAddress).
IListenAddress = ISocketAddress


class IBusyStarter(Interface):
    """One ``<BusyStarter>`` scaling rule, as parsed (part 2 gives it behaviour).

    Every ``RunEvery`` seconds, when every child is busy and fewer than
    ``MaxProcesses`` run, start one more child.
    """

    Priority = Attribute("int; rules run highest first.  Default 0")
    Semaphore = Attribute("absolute path of the scoreboard file, or None for "
                          "anonymous shared memory")
    RunEvery = Attribute("float seconds between two checks, > 0.  Default 5")
    lineno = Attribute("line of the section start, or None for the default rule")


class IProcmanConfig(Interface):
    """A procman config file, parsed and checked by ``loadConfig``.

    Attribute names follow the config keys.  Every value has been checked:
    counts are non-negative ints, durations non-negative float seconds, paths
    absolute (relative ones are taken relative to the config file's
    directory).  A key that was not given holds its default.
    """

    filename = Attribute("path of the config file, as given to loadConfig")
    Command = Attribute("list of str: the peak command line run in the children, "
                        "split like a shell does, with the extra arguments appended")
    PidFile = Attribute("absolute path of the pid file, or None")
    StdErr = Attribute("absolute path stderr is pointed at (append mode), or None "
                       "to inherit")
    AccessLog = Attribute("absolute path of the access log the children append to, '-' "
                          "for stderr, or None for no access log")
    AccessLogFormat = Attribute("'combined' (Apache's, plus the duration) or 'json'")
    Prefork = Attribute("int: children started at startup, <= MaxProcesses; "
                        "defaults to MinProcesses")
    MinProcesses = Attribute("int >= 1: the floor.  Default 1")
    MaxProcesses = Attribute("int >= MinProcesses: the ceiling.  Default 4")
    HugePages = Attribute("bool: collapse the preloaded heap into huge pages (hugepages.py).  "
                          "Default True")
    Standby = Attribute("int 0-4: children forked ahead, waiting to be woken (standby.py).  "
                        "Default 0")
    StartInterval = Attribute("float seconds between two starts.  Default 0.5")
    IdleTimeout = Attribute("float seconds an idle child above the floor is kept; "
                            "0 keeps idle children for ever.  Default 60")
    MaxRequests = Attribute("int: recycle a child after this many requests; 0 never")
    MaxRequestsJitter = Attribute("int: up to this many requests added per child to "
                                  "MaxRequests, so children do not recycle together")
    RequestTimeout = Attribute("float seconds one request may take before its child "
                               "is killed; 0 never")
    MaxMemory = Attribute("int bytes: recycle a child whose USS is above this; 0 never")
    StopTimeout = Attribute("float seconds from SIGHUP to SIGTERM when stopping a "
                            "child.  Default 30")
    KillTimeout = Attribute("float seconds from SIGTERM to SIGKILL.  Default 5")
    Reload = Attribute("'overlap' (default: the new generation starts beside the old "
                       "one) or 'stop' (the old children stop first)")
    ReloadCheckTimeout = Attribute("float seconds > 0: the deadline of the config and "
                                   "code check a reload runs.  Default 60")
    Listen = Attribute("list of IListenAddress, in file order; empty means inherit "
                       "fd 0 or systemd's LISTEN_FDS")
    StatusListen = Attribute("ListenAddress or None: where the manager serves its HTTP "
                             "status (metrics, health, readiness, JSON, a page)")
    DrainDelay = Attribute("float seconds: after SIGTERM, serve (not ready) this long "
                           "before the children are stopped")
    ListenOwner = Attribute("(uid, gid) given to the unix sockets the manager creates, -1 "
                            "for a part left as created; None to leave both")
    ChildConfig = Attribute("absolute path of an existing .ini file, or None")
    User = Attribute("the User value as written (name or number), or None")
    Group = Attribute("the Group value as written (name or number), or None")
    uid = Attribute("int uid the children switch to, or None to keep the manager's")
    gid = Attribute("int gid the children switch to, or None to keep the manager's; "
                    "with User and no Group, the user's primary group")
    imports = Attribute("list of str: import specs (``pkg.mod`` or ``pkg.mod:attr``) "
                        "to import before forking, in file order; syntax-checked only")
    busyStarters = Attribute("list of IBusyStarter sorted by Priority, highest first "
                             "(file order among equals); one default rule when the "
                             "file has no <BusyStarter> section")

    def lineOf(key):
        """Return the line ``key`` was given on, or None if it was not given.

        ``key`` is a config key in any case (``'Command'``, ``'command'``).  For
        a repeatable key it is the first occurrence.
        """

    def errorAt(key, message):
        """Return (not raise) a ConfigError for ``message`` located at ``key``.

        The line is ``lineOf(key)``, or 1 when the key was not given, so
        checks made after loading (for example that the command has a socket)
        report ``FILE:LINE:`` like the loader does.
        """


# -- scaling --------------------------------------------------------------

class IScalingPolicy(Interface):
    """The manager's scaling decisions as a pure computation (scaling.Policy).

    Inputs are explicit: the live (not stopping) children's records, each with
    ``pid``, ``state`` (a scoreboard state number), ``lastChange`` (when the
    slot last changed), ``startedAt``, ``requests``, ``limit`` and
    ``replacing``; the floor; the clock, ``now``; and the config given at
    construction.  Every time is CLOCK_MONOTONIC, the scoreboard's clock.  Nothing here touches
    a process, a timer or the scoreboard: the manager acts on the answers.
    """

    def housekeeping(live, floor, now, idleStopping=False, draining=()):
        """A list of ``Decision(action, child, reason)``: TIMEOUT (stop quickly and
        replace), RECYCLE (stop gracefully and replace), REPLACE_FIRST (start the
        replacement, then stop it) or IDLE (stop gracefully).  At most one IDLE,
        and none while ``idleStopping``.  ``draining`` children (asked to stop
        gracefully) only ever get TIMEOUT, when a request outlives RequestTimeout."""

    def nextCheck(live, floor, now):
        """The monotonic time by which ``housekeeping`` must be asked again, or None
        when nothing can become due without another event (a signal, a child's exit
        or its wakeup)."""

    def memoryDecisions(live, floor, usage):
        """MaxMemory: a RECYCLE decision, or REPLACE_FIRST when stopping it would leave
        fewer than ``floor`` live children, with reason 'memory', for each live child
        not already being replaced whose USS (``usage[pid]``, bytes) is above MaxMemory."""

    def wantsGrowth(live, total):
        """True when every live child is busy and ``total`` children (stopping ones
        included) leave room under MaxProcesses."""

    def changeFloor(floor, delta):
        """The floor after SIGTTIN (+1) or SIGTTOU (-1), between 1 and MaxProcesses."""

    def floorVictim(live, floor, now):
        """After the floor was lowered: the child to stop at once, or None."""


# -- the manager's parts (see manager.py for who does what) -----------------

class IPool(Interface):
    """The children of this generation: the one owner of their records.

    Each record (``records.Child``) has ``pid``, ``proxy``, ``slot``, ``number``,
    ``limit``, ``startedAt``, the scoreboard's ``state``, ``requests`` and
    ``lastChange`` as of the last ``refresh()``, and the pool's own
    ``stopStage``, ``stopReason``, ``stopAskedAt``, ``replacing`` and
    ``stackAsked``.  Everyone else reads the records through ``records()``
    or ``live()`` and changes them only through the methods below.

    The pool never forks and never reaps.  Every method runs in the
    manager's loop (or between two of its turns), never in a signal handler.
    """

    floor = Attribute("int: the floor, MinProcesses moved by SIGTTIN/SIGTTOU")
    readySent = Attribute("True once this generation's first children were ready")
    quickDeaths = Attribute("int: children in a row that died young, unasked")

    def records():
        """A read-only mapping pid -> record of every child, stopping ones included."""

    def live():
        """The records of the children not asked to stop, as a new list."""

    def refresh():
        """Copy each child's scoreboard slot into its record."""

    def target():
        """How many children the pool must reach before it is ready (then: the floor)."""

    def startDue():
        """True when the manager should fork one child now.  Else False, and a
        timer is armed for when one is due, if one will be."""

    def started(child):
        """The manager forked ``child`` (a new record): book it; stop the child it
        replaces, if any."""

    def forkFailed(error):
        """fork() raised ``error``: back off."""

    def slotsFull():
        """No scoreboard slot was free for a fork: try again later."""

    def exited(proxy):
        """The reaper saw ``proxy`` exit.  The record of that child, taken out of
        the pool with its counts added to the tally and its slot cleared, or
        None when it is not one of ours.  A repair owed is started from a
        standby first, if one waits."""

    def startFromStandby():
        """Start what is due now by waking standby children (standby.py), no fork."""

    def maintain():
        """Re-plan after any change (a start, an exit, a signal)."""

    def housekeeping():
        """Act on the policy's decisions now; look again by its next deadline."""

    def childWoke():
        """A child wrote to the manager's wake pipe (already drained)."""

    def changeFloor(delta):
        """SIGTTIN (+1) or SIGTTOU (-1)."""

    def stopChild(child, reason, quick=False):
        """Stop one child: SIGHUP, SIGTERM after StopTimeout, SIGKILL after
        KillTimeout; ``quick``: SIGTERM first."""

    def signalChild(child, stage):
        """Send SIG``stage`` ('HUP', 'TERM', 'KILL') to a child being stopped now,
        escalating from there."""

    def replace(child, reason, quick=False):
        """Stop ``child`` and start its replacement at once."""

    def replaceFirst(child, reason):
        """Start ``child``'s replacement at once, and stop ``child`` once it runs."""

    def wantGrowth():
        """Load calls for one more child: start it, paced by StartInterval."""

    def growthDue():
        """The monotonic time from which a start on load may follow."""

    def stopAll(mode):
        """The manager stops ('stop', 'restart': gracefully; 'quit': quickly)."""

    def signalAll(sig):
        """Send ``sig`` (a name or number) to every child."""

    def statusText():
        """The one-line STATUS= text: busy, idle and total children."""


class IGrowth(Interface):
    """When load calls for one more child (growth.py); asks the pool, which paces.

    Looks at the pool only through IPool's ``live()``, ``records()``,
    ``refresh()``, ``growthDue()`` and ``wantGrowth()``.
    """

    def woke():
        """A child found every child busy and wrote to the wake pipe."""

    def look():
        """Every child busy and a connection waiting: ask the pool for one more.
        Then arm what brings the next look: the scoreboard's wake while not every
        child is busy; else a timer at ``growthDue()``, or a watch on the
        listening sockets, or at most ``REARM`` later."""

    def grew():
        """The pool started a child on load: look again when the next may start."""

    def armWake():
        """Arm the scoreboard's wake flag while there is room for one more child."""

    def connectionPending():
        """True when a connection waits on a listening socket, unaccepted, or in the
        children's shared queue (IWaitingWork)."""


class IGuards(Interface):
    """RequestTimeout's stack and MaxMemory (guards.py); act through IPool."""

    def askStack(child):
        """``child`` is busy past RequestTimeout: ask for its stack, then kill and
        replace it, unless its request ended meanwhile."""


class IReloading(Interface):
    """A reload's course (reloading.py): SIGHUP, the check, its outcome, and the
    previous generation this image retires.  Acts on the manager only through
    the callables it was given."""

    def requestRestart():
        """SIGHUP: start the check, or coalesce into the running one."""

    def previousServing():
        """True while children of a previous generation (carried across a reload's
        exec) are still running."""

    def settled():
        """True when neither a check nor a previous generation is running."""

    def fds():
        """Descriptors a newly forked child must close."""

    def owns(proxy):
        """True when ``proxy`` is the check's or a previous generation child's."""

    def exited(proxy):
        """One that ``owns()`` exited: book it."""

    def newChildExited(child, proxy, quickDeaths):
        """A child of this generation exited: a reload whose new children keep
        dying young fails, and the previous generation keeps serving."""

    def generationReady():
        """This generation is ready: retire the previous one; publish the outcome."""

    def reloadFailed(reason):
        """The reload that exec'd this image failed: say so; keep the previous
        generation serving."""

    def stop(quick=False):
        """The manager stops: kill the check; retire the previous generation."""

    def execCarrying(records, statusService=None):
        """exec the new image carrying this generation's ``records`` (and any
        previous generation) still serving, and ``statusService``'s listener
        with a keeper answering on it until the new image does.  Returns only
        if exec failed."""

    def takeConfig():
        """The descriptor of the config bytes the passed check read, or None."""


class IManagerView(Interface):
    """What the status listener may read of the manager (view.py); read-only."""

    cfg = Attribute("the IProcmanConfig")
    loop = Attribute("the manager's loop, for the listener's readers and timers")
    pid = Attribute("the manager's pid")
    board = Attribute("the scoreboard")
    tally = Attribute("the manager's ITally")
    listeners = Attribute("the listening sockets (IListeners)")
    children = Attribute("read-only mapping pid -> record of this generation's children")
    shutdown = Attribute("None while running, else 'stop', 'quit' or 'restart'")
    draining = Attribute("True during DrainDelay after SIGTERM")
    environ = Attribute("the manager's environment: the status socket and keeper a "
                        "reload's exec carried are named there")
    old = Attribute("the previous generation still serving after a reload's exec "
                    "(generation.OldGeneration), or None")
