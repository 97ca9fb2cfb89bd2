"""The one table of procman config keys: name, type, default, bounds, checks, docs.

``config`` parses a file with it, ``configcheck`` checks the values it names
against the file system and the accounts, ``--check`` runs the probes it
names, and the key tables of docs/procman.md are rendered from it by
``markdownTable``.  To add a key, add a row here; the test that compares the
docs with the table fails and shows the table to paste.
"""

import dataclasses

from peak_lite.running.procman import configcheck as check
from peak_lite.running.procman import configprobe as probe
from peak_lite.running.procman import configtypes as types
from peak_lite.running.procman import accesslog, memory
from peak_lite.running.procman.configtypes import MAX_PROCESSES, MAX_REQUESTS

MAX_STANDBY = 4

__all__ = ['Key', 'KEYS', 'SECTIONS', 'markdownTable']


@dataclasses.dataclass(frozen=True)
class Key:
    """One config key.

    ``parse(text)`` converts the value as written, raising ValueError with
    the message; ``low``/``high`` bound a number; ``check(checker, key,
    value, lines)`` checks it against the file system or the accounts and returns
    the value to keep; ``probe(cfg, seen)`` is what ``--check`` tries beyond
    loading (open, lock, bind), ``seen`` being a dict the probes share.
    """

    name: str
    type: str               # as the docs show it
    parse: object
    default: object
    shown: str              # the default as the docs show it
    doc: str                # one line
    low: int = None
    high: int = None
    check: object = None
    probe: object = None
    repeat: bool = False
    attribute: str = None

    @property
    def attr(self):
        return self.attribute or self.name

    def outOfBounds(self, value):
        """The error message if ``value`` is out of bounds, else None."""
        if self.low is not None and value < self.low:
            return f'{self.name} must be at least {self.low}, got {value}'
        if self.high is not None and value > self.high:
            return (f'{self.name}: {value} is above {self.high}, the largest {self.name}'
                    f' allowed; use a smaller number')
        return None

    def row(self):
        kind = self.type
        if self.high is not None:
            kind += f', {self.low or 0} to {self.high}'
        elif self.low:
            kind += f', at least {self.low}'
        return f'| `{self.name}` | {kind} | {self.shown} | {self.doc} |'


def _count(name, default, doc, low=0, high=None, shown=None):
    return Key(name, 'count', types.count, default, str(default) if shown is None else shown,
               doc, low=low, high=high)


def _duration(name, default, doc, parse=types.duration):
    return Key(name, 'duration', parse, float(default), str(default), doc)


KEYS = (
    Key('Command', 'command line', types.commandLine, None, 'required',
        'The peak command run in each child, split like a shell does (quotes and backslashes'
        ' work). Arguments given after the config file on the command line are appended.'),
    Key('PidFile', 'path', types.pathValue, None, 'none',
        "Pid file, locked for the manager's life. Its directory must exist and be writable;"
        ' a symlink or a file that is not a regular file is refused.',
        check=check.writablePath, probe=probe.probePidFile),
    Key('StdErr', 'path', types.pathValue, None, 'inherit',
        'File that stderr (fd 2) of the manager and its children is pointed at, opened in'
        ' append mode and reopened on SIGUSR1. Its directory must exist and be writable;'
        ' a symlink or a file that is not a regular file is refused.',
        check=check.writablePath, probe=probe.probeStdErr),
    Key('AccessLog', 'path or `-`', types.pathValue, None, 'none (off)',
        'Access log the children write, one line per request; `-` writes it to stderr'
        ' (so to `StdErr`). Opened like `StdErr`, in append mode, and reopened on SIGUSR1.',
        check=accesslog.checkAccessLog),
    Key('AccessLogFormat', '`combined` or `json`', accesslog.accessLogFormat, 'combined',
        '`combined`', "`combined`: Apache's combined format plus the duration in"
        ' microseconds; `json`: one JSON object per line.'),
    _count('Prefork', None, 'Children started at startup; at most `MaxProcesses`.',
           high=MAX_PROCESSES, shown='`MinProcesses`'),
    _count('MinProcesses', 1, 'The floor: the manager always keeps at least this many'
           ' children.', low=1, high=MAX_PROCESSES),
    _count('MaxProcesses', 4, 'The ceiling: never more children than this. At least'
           ' `MinProcesses`; below the `RLIMIT_NPROC` limit (`ulimit -u`) of a manager not'
           ' running as root.', low=1, high=MAX_PROCESSES),
    Key('HugePages', '`on` or `off`', types.onOff, True, '`on`',
        "Once the app is built, move the manager's well-used heap into 2 MB huge pages"
        ' before the first fork: forking and reaping children of a big app get several'
        ' times cheaper, and a child still shares every page until it writes to it.'
        ' Linux 6.1 and later; elsewhere nothing happens.'),
    _count('Standby', 0, 'Children forked ahead and kept waiting, set up but not'
           ' accepting: a repair, the floor, SIGTTIN or growth wakes one instead of forking,'
           ' and another is forked behind it. Not counted in `MaxProcesses`. Needs a'
           ' gateway `Command` (`CGI` or `HTTP`) that serves the `Listen` socket.',
           high=MAX_STANDBY),
    _duration('StartInterval', 0.5, 'Minimum time between two starts that grow the pool'
              ' above its floor; repairs, the floor and SIGTTIN start at once.'),
    _duration('IdleTimeout', 60, 'A child idle this long, while more than `MinProcesses`'
              ' run, is stopped gracefully. 0 keeps idle children.'),
    _count('MaxRequests', 0, 'Recycle a child after this many requests; 0 never. With'
           ' `MaxRequestsJitter`, at most 4294967295 in all: the width of the scoreboard'
           "'s request-limit field.", high=MAX_REQUESTS),
    _count('MaxRequestsJitter', 0, 'Add up to this many requests, at random per child, to'
           ' `MaxRequests`, so that children do not all recycle at once. Needs'
           ' `MaxRequests`.', high=MAX_REQUESTS),
    _duration('RequestTimeout', 0, 'A child busy on one request longer than this is killed'
              ' and replaced; 0 never.'),
    Key('MaxMemory', 'size', memory.parseSize, 0, '0 (off)',
        'Recycle a child gracefully, after its current request, once its private memory'
        ' (USS: shared copy-on-write pages not counted) is above this size, such as'
        ' `512MB` or `2GB`; checked every 10 s. 0 never.'),
    _duration('StopTimeout', 30, 'When stopping a child: time from SIGHUP (finish the'
              ' current request) to SIGTERM.'),
    _duration('KillTimeout', 5, 'Time from SIGTERM to SIGKILL.'),
    Key('Reload', '`overlap` or `stop`', types.reloadMode, 'overlap', '`overlap`',
        'How SIGHUP replaces the children once the check passed. `overlap`: the new'
        ' generation starts beside the old one, which drains once `Prefork` new children'
        ' are ready. `stop`: the old children stop first, then the new ones start, for'
        ' applications that cannot run two generations at once.'),
    _duration('ReloadCheckTimeout', 60, 'Deadline of the config and code check a reload'
              ' (SIGHUP) runs; more than 0.', parse=types.positiveDuration),
    Key('Listen', 'address, repeatable', types.listenAddress, (), 'none',
        'A socket the manager opens and the children share on fd 0; see below. With no'
        ' `Listen`, the manager inherits fd 0 when it is a listening socket (a web'
        " server's FastCGI support) or systemd's `LISTEN_FDS`.",
        check=check.listenAddresses, probe=probe.probeListen, repeat=True),
    Key('ListenOwner', '`USER[:GROUP]` or `:GROUP`', types.ownerSpec, None, 'unchanged',
        'Owner and group given to the unix sockets procman creates (the mode is on the'
        ' `Listen` line); a part not given is left as created (the manager\'s). Names'
        ' must exist; numbers are used as they are. Needs a `Listen unix:` line.'),
    Key('StatusListen', 'address', types.listenAddress, None, 'none (off)',
        'Where the manager itself serves its status over HTTP: `/metrics` (Prometheus),'
        ' `/healthz`, `/readyz`, `/status` (JSON) and `/` (a page); `HOST:PORT`,'
        ' `[V6]:PORT` or `unix:PATH[:MODE]`. See "Status listener".',
        check=check.statusAddress, probe=probe.probeStatusListen),
    _duration('DrainDelay', 0, 'After SIGTERM, keep serving and accepting this long, with'
              ' `/readyz` answering 503, before the children are stopped; for load'
              ' balancers to stop sending first.'),
    Key('ChildConfig', 'path', types.pathValue, None, 'none',
        '`.ini` file loaded into the configuration root under which the child command is'
        ' built. Must be an existing, readable file.', check=check.readableFile),
    Key('User', 'name or uid', types.accountName, None, 'unchanged',
        'User the children switch to after the sockets are bound. A name must exist in the'
        ' password database; a number is used as is, but one with no password entry needs'
        ' a `Group`.'),
    Key('Group', 'name or gid', types.accountName, None,
        "`User`'s primary group, when `User` is a known user; else unchanged",
        'Group the children switch to. A name must exist in the group database.'),
    Key('import', 'module spec, repeatable', types.importSpec, (), 'none',
        'Module (`zope.publisher.browser`) or object (`pkg.module:Class`) imported in the'
        ' manager before forking, so the children share it. Only the syntax is checked'
        ' when the file is read; the import happens at preload.',
        repeat=True, attribute='imports'),
)

SECTIONS = {
    'BusyStarter': (
        Key('Priority', 'whole number', types.integerValue, 0, '0',
            'Rules run in priority order, highest first; negative numbers are allowed.'),
        Key('Semaphore', 'path', types.pathValue, None, 'none',
            'Put the scoreboard in this file, so that outside tools and `peak procman'
            ' --status` can read it. Without it the scoreboard is anonymous shared memory.'
            ' Its directory must exist and be writable.', check=check.writablePath),
        Key('RunEvery', 'duration', types.positiveDuration, 5.0, '5',
            'How often the rule runs; more than 0.'),
    ),
}


def markdownTable(keys):
    """The docs' table of ``keys``, one row each."""
    return '\n'.join(['| key | type | default | meaning |', '|---|---|---|---|']
                     + [key.row() for key in keys])

