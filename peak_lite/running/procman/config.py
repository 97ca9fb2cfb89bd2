"""Load and check a procman config file (DESIGN §8 "Config file").

ZConfig parses the file against ``schema.xml`` and converts each value with
the datatypes below, so a bad value is reported at its own line.  Before
that, trailing ``# comments`` are cut off line by line (keeping line
numbers); after it, cross-key checks run, each reported at the line of the
key it is about.
"""

import dataclasses
import difflib
import functools
import grp
import importlib.resources
import io
import ipaddress
import keyword
import math
import os
import pwd
import re
import shlex

import ZConfig
from zope.interface import implementer

from peak_lite.running.procman.interfaces import (
    ConfigError, IBusyStarter, IListenAddress, IProcmanConfig)

__all__ = ['loadConfig', 'ProcmanConfig', 'ListenAddress', 'BusyStarter',
           'DEFAULT_SOCKET_MODE']

#: Mode of a ``unix:`` socket file given no ``:mode``: owner only.  Widen it
#: (``:0660``) when the web server runs as another user of the same group.
DEFAULT_SOCKET_MODE = 0o600
MAX_FILE_SIZE = 1 << 20
MAX_DURATION = 365 * 86400.0
UNIX_PATH_MAX = 107     # sun_path is 108 bytes including the terminating NUL

KEYS = ('Command', 'PidFile', 'StdErr', 'Prefork', 'MinProcesses',
        'MaxProcesses', 'StartInterval', 'IdleTimeout', 'MaxRequests',
        'MaxRequestsJitter', 'RequestTimeout', 'StopTimeout', 'KillTimeout',
        'Listen', 'ChildConfig', 'User', 'Group', 'import')
SECTION_KEYS = {'BusyStarter': ('Priority', 'Semaphore', 'RunEvery')}
_CANONICAL = {k.lower(): k for k in KEYS + sum(SECTION_KEYS.values(), ())}
_SECTIONS = {k.lower(): k for k in SECTION_KEYS}
COMMAND_EXAMPLE = 'Command CGI MyPackage:MyApp'


# -- parsed values ----------------------------------------------------------

@implementer(IListenAddress)
@dataclasses.dataclass(frozen=True)
class ListenAddress:
    """See IListenAddress."""

    kind: str
    path: str = None
    mode: int = None
    host: str = None
    port: int = None
    family: str = None
    fd: int = None
    lineno: int = dataclasses.field(default=None, compare=False)

    def __str__(self):
        if self.kind == 'unix':
            return f'unix:{self.path}:{self.mode:04o}'
        if self.kind == 'fd':
            return f'fd:{self.fd}'
        host = f'[{self.host}]' if self.family == 'inet6' else self.host
        return f'{host}:{self.port}'


@implementer(IBusyStarter)
@dataclasses.dataclass(frozen=True)
class BusyStarter:
    """See IBusyStarter."""

    Priority: int = 0
    Semaphore: str = None
    RunEvery: float = 5.0
    lineno: int = dataclasses.field(default=None, compare=False)


@implementer(IProcmanConfig)
class ProcmanConfig:
    """See IProcmanConfig."""

    def __init__(self, filename, values, keyLines):
        self.filename = filename
        self._keyLines = dict(keyLines)
        for name, value in values.items():
            setattr(self, name, value)

    def lineOf(self, key):
        return self._keyLines.get(key.lower())

    def errorAt(self, key, message):
        return ConfigError(message, self.filename, self.lineOf(key) or 1)

    def __repr__(self):
        return f'<ProcmanConfig {self.filename!r} Command={self.Command!r}>'


# -- ZConfig datatypes (named in schema.xml); ValueError carries the message --

_INT = re.compile(r'[+-]?[0-9]{1,15}')    # more digits is a typo, not a count
_DURATION = re.compile(r'([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m|h)?')
_UNITS = {None: 1.0, 's': 1.0, 'ms': 0.001, 'm': 60.0, 'h': 3600.0}
_HOSTNAME = re.compile(r'(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?')
_LISTEN_FORMS = 'unix:/path[:mode], host:port, [v6addr]:port or fd:N'


def integerValue(text):
    if not _INT.fullmatch(text):
        raise ValueError(f'expected a whole number, got {text!r}')
    return int(text)


def count(text):
    if not _INT.fullmatch(text) or int(text) < 0:
        raise ValueError(f'expected a whole number >= 0, got {text!r}')
    return int(text)


def duration(text):
    m = _DURATION.fullmatch(text)
    if not m:
        raise ValueError(f'expected a duration >= 0 such as 30, 0.5, 500ms, 30s or 2m,'
                         f' got {text!r}')
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if not math.isfinite(seconds) or seconds > MAX_DURATION:
        raise ValueError(f'{text!r} is longer than the 365-day limit')
    return seconds


def positiveDuration(text):
    seconds = duration(text)
    if seconds <= 0:
        raise ValueError(f'expected a duration > 0 such as 5, 500ms or 2m, got {text!r}')
    return seconds


def pathValue(text):
    if not text:
        raise ValueError('expected a path, got nothing')
    return text


def commandLine(text):
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise ValueError(f'cannot split {text!r} like a shell would ({e});'
                         f' balance the quotes or escape them with \\') from None
    if not words:
        raise ValueError(f"expected a peak command line such as '{COMMAND_EXAMPLE}',"
                         f" got nothing")
    return words


def accountName(text):
    if not text or len(text.split()) != 1:
        raise ValueError(f'expected one user or group name or number, got {text!r}')
    if _isNumber(text) and int(text) >= 2**32 - 1:
        raise ValueError(f'{text} is not a valid user or group id; ids are below 4294967295')
    return text


def importSpec(text):
    module, _, attrs = text.partition(':')
    for part in module.split('.') + (attrs.split('.') if attrs else []):
        if not part.isidentifier() or keyword.iskeyword(part):
            raise ValueError(f"expected a module name such as 'zope.publisher.browser'"
                             f" or 'pkg.module:Class', got {text!r}")
    return text


def listenAddress(text):
    if text.startswith('unix:'):
        path, mode = text[5:], DEFAULT_SOCKET_MODE
        m = re.fullmatch(r'(.*):([0-7]{3,4})', path)
        if m:
            path, mode = m.group(1), int(m.group(2), 8)
            if mode > 0o777:
                raise ValueError(f'socket mode {m.group(2)} in {text!r} has bits beyond'
                                 f' 0777; use a mode such as 0600 or 0660')
        if not path:
            raise ValueError(f'expected a socket path after unix: in {text!r}')
        return ListenAddress('unix', path=path, mode=mode)
    if text.startswith('fd:'):
        if not text[3:].isdigit() or not text[3:].isascii():
            raise ValueError(f'expected a descriptor number after fd: in {text!r}')
        return ListenAddress('fd', fd=int(text[3:]))
    host, sep, port = text.rpartition(':')
    if not sep or not host:
        raise ValueError(f'expected {_LISTEN_FORMS}, got {text!r}')
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(f'expected a port from 0 to 65535 in {text!r}, got {port!r}')
    if host.startswith('[') and host.endswith(']'):
        family, host = 'inet6', host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f'{host!r} in {text!r} is not an IPv6 address') from None
    elif ':' in host:
        raise ValueError(f'an IPv6 address needs brackets, as in [::1]:8080; got {text!r}')
    else:
        family = 'inet'
        if re.fullmatch(r'[0-9.]+', host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise ValueError(f'{host!r} in {text!r} is not an IPv4 address') from None
        elif not _HOSTNAME.fullmatch(host):
            raise ValueError(f'{host!r} in {text!r} is not a host name or address')
    return ListenAddress('tcp', host=host, port=int(port), family=family)


# -- reading, comment stripping and layout ----------------------------------

def _readText(path):
    try:
        with open(path, 'rb') as f:
            data = f.read(MAX_FILE_SIZE + 1)
    except OSError as e:
        raise ConfigError(f'cannot read the config file: {e.strerror or e};'
                          f' check the path and its permissions', path) from None
    if len(data) > MAX_FILE_SIZE:
        raise ConfigError(f'the file is over {MAX_FILE_SIZE} bytes; a procman config is'
                          f' a short text file: is this the right file?', path)
    if b'\0' in data:
        raise ConfigError('binary data (a NUL byte) in the file; a procman config is'
                          ' UTF-8 text', path, data[:data.index(b'\0')].count(b'\n') + 1)
    try:
        return data.decode('utf-8-sig')
    except UnicodeDecodeError as e:
        raise ConfigError(f'byte 0x{data[e.start]:02x} is not UTF-8 text; save the file'
                          f' as UTF-8', path, data[:e.start].count(b'\n') + 1) from None


def _stripComment(line, quoted):
    """Cut a `` # comment`` off ``line``; with ``quoted``, shell quoting protects ``#``."""
    quote, escaped, space = None, False, False
    for i, ch in enumerate(line):
        if ch == '#' and space:
            return line[:i].rstrip()
        space = ch.isspace() and not (escaped or quote)
        if escaped:
            escaped = False
        elif quoted and ch == '\\' and quote != "'":
            escaped = True
        elif quoted and ch == quote:
            quote = None
        elif quoted and not quote and ch in '\'"':
            quote = ch
    return line


@dataclasses.dataclass
class _Section:
    type: str                   # lower case, as ZConfig matches it
    name: str
    start: int
    end: int = None
    keyLines: dict = dataclasses.field(default_factory=dict)    # key -> first line

    def holds(self, lineno):
        return self.start < lineno and (self.end is None or lineno < self.end)


@dataclasses.dataclass
class _Layout:
    """Where things are in the file: what ZConfig does not keep for us."""

    lines: list = dataclasses.field(default_factory=list)       # comment-free lines
    keyLines: dict = dataclasses.field(default_factory=dict)    # key -> first line
    lineKeys: dict = dataclasses.field(default_factory=dict)    # line -> Key
    sections: list = dataclasses.field(default_factory=list)    # [_Section]

    def sectionAt(self, lineno):
        return next((s for s in self.sections if s.holds(lineno)), None)

    def line(self, lineno):
        return self.lines[lineno - 1].strip() if 0 < lineno <= len(self.lines) else ''


_NAME = re.compile(r'[^\s()<>/]+')     # a key, directive or section type name


def _scan(text, filename):
    """Return a _Layout: the comment-free lines and where each key is."""
    layout, current = _Layout(), None
    for lineno, line in enumerate(text.split('\n'), 1):
        stripped = line.strip()
        if stripped[:1] in ('', '#'):
            layout.lines.append('')
            continue
        name = _NAME.match(stripped.lstrip('<%/'))
        name = name.group() if name else ''
        line = _stripComment(line, quoted=name.lower() == 'command')
        layout.lines.append(line)
        if stripped[0] == '%':
            if name in ('include', 'import'):
                raise ConfigError(f"%{name} is not supported in a procman config;"
                                  f" put every setting in this one file", filename, lineno)
        elif stripped[:2] == '</':
            if current:
                current.end, current = lineno, None
        elif stripped[0] == '<':
            words = stripped.strip('<>/').split()
            current = _Section(name.lower(), ' '.join(words[1:]).lower(), lineno)
            layout.sections.append(current)
            layout.keyLines.setdefault(current.type, lineno)
            if line.rstrip().endswith('/>'):
                current.end, current = lineno, None
        else:
            layout.lineKeys[lineno] = _CANONICAL.get(name.lower(), name)
            (current.keyLines if current else layout.keyLines).setdefault(
                name.lower(), lineno)
    return layout


# -- loading ----------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _schema():
    ref = importlib.resources.files(__package__).joinpath('schema.xml')
    with ref.open('r', encoding='utf-8') as f:
        return ZConfig.loadSchemaFile(f, url='package:peak_lite.running.procman:schema.xml')


def loadConfig(path, extraArgs=(), checkFiles=True):
    """Read, parse and check the procman config file at ``path``.

    Return an IProcmanConfig whose ``Command`` has ``extraArgs`` appended.
    Raise ConfigError, one line ``FILE:LINE: message``, for anything wrong:
    unreadable or non-text file, syntax, unknown key or section, bad value,
    inconsistent values, missing paths, users or groups.

    With ``checkFiles`` false the file system is left alone: paths are made
    absolute but not checked for existence or permissions (to check a config
    meant for another machine).
    """
    path = os.fspath(path)
    layout = _scan(_readText(path), path)
    if not layout.keyLines and not layout.sections:
        raise ConfigError(f"the file has no settings; it needs at least a Command line,"
                          f" such as '{COMMAND_EXAMPLE}'", path)
    try:
        raw = ZConfig.loadConfigFile(_schema(), io.StringIO('\n'.join(layout.lines)), url=path)[0]
    except ZConfig.ConfigurationError as e:
        raise _translate(e, path, layout) from None
    return _Checker(path, layout, checkFiles).build(raw, extraArgs)


def _translate(error, path, layout):
    """Turn a ZConfig error into a ConfigError with our wording and a line."""
    lineno = getattr(error, 'lineno', None)
    lineno = lineno if isinstance(lineno, int) and lineno > 0 else 1
    line = layout.line(lineno)
    message, key = error.message, layout.lineKeys.get(lineno, line)
    section = layout.sectionAt(lineno)
    opened = [s for s in layout.sections if s.end is None]
    ended = next((s for s in layout.sections if s.end == lineno != s.start), None)
    if isinstance(error, ZConfig.DataConversionError) and key:
        message = f'{key}: {message}'
    elif 'is not a known key name' in message:
        inside = section and _SECTIONS.get(section.type)
        known = SECTION_KEYS[inside] if inside else KEYS
        close = difflib.get_close_matches(key.lower(), [k.lower() for k in known], 1)
        hint = (f'did you mean {_CANONICAL[close[0]]}?' if close
                else f'the known keys{" there" if inside else ""} are: {", ".join(known)}')
        message = f'unknown key {key!r}{f" in <{inside}>" if inside else ""}; {hint}'
    elif 'does not support multiple values' in message:
        message = f'{key} is given twice; keep one of the two lines'
    elif message.startswith('unknown type name'):
        message = (f'unknown section {line}; the known sections are:'
                   f' <{">, <".join(SECTION_KEYS)}>')
    elif message.startswith('unclosed sections') and opened:
        lineno, name = opened[-1].start, layout.line(opened[-1].start)
        message = f'section {name} is never closed; add </{_NAME.search(name).group()}>'
    elif message == 'unbalanced section end' and ended:
        message = (f'{line} does not close the section {layout.line(ended.start)}'
                   f' opened on line {ended.start}')
    elif message == 'unexpected section end':
        message = f'{line} closes no section; remove it'
    elif message.startswith('malformed section'):
        message = f'cannot read {line!r} as a section tag such as <BusyStarter>'
    elif message.startswith('malformed configuration data'):
        message = f"cannot read {line!r} as 'Key value'"
    elif message.startswith('section names must not be re-used'):
        seen = set()
        for other in layout.sections:
            if other.name and (other.type, other.name) in seen:
                lineno, line = other.start, layout.line(other.start)
                break
            seen.add((other.type, other.name))
        message = f'the name in {line} is already used; give each section its own name'
    elif isinstance(error, ZConfig.SubstitutionReplacementError):
        message = (f'${error.name} is not defined; define it with'
                   f" '%define {error.name} VALUE' or write $$ for a literal $")
    return ConfigError(message, path, lineno)


# -- cross-key checks ---------------------------------------------------------

class _Checker:
    """Check what one value cannot check alone; resolve paths and accounts."""

    def __init__(self, filename, layout, checkFiles):
        self.filename = filename
        self.checkFiles = checkFiles
        self.layout = layout
        self.base = os.path.dirname(os.path.abspath(filename))

    def error(self, key, message, lines=None):
        lineno = (lines if lines is not None else self.layout.keyLines).get(key.lower())
        return ConfigError(message, self.filename, lineno or 1)

    def build(self, raw, extraArgs):
        v = {k: getattr(raw, k) for k in KEYS if k != 'import'}
        v['imports'] = raw.imports
        if v['Command'] is None:
            raise ConfigError(f"no Command given; add a line such as '{COMMAND_EXAMPLE}'",
                              self.filename)
        v['Command'] = v['Command'] + [os.fspath(a) for a in extraArgs]
        self.checkCounts(v)
        for key in ('PidFile', 'StdErr'):
            v[key] = v[key] and self.writablePath(key, v[key])
        if v['ChildConfig']:
            v['ChildConfig'] = self.readableFile('ChildConfig', v['ChildConfig'])
        v['Listen'] = self.listenAddresses(v['Listen'])
        v['uid'], v['gid'] = self.accounts(v['User'], v['Group'])
        v['busyStarters'] = self.busyStarters(raw.busyStarters)
        return ProcmanConfig(self.filename, v, self.layout.keyLines)

    def checkCounts(self, v):
        for key in ('MinProcesses', 'MaxProcesses'):
            if v[key] < 1:
                raise self.error(key, f'{key} must be at least 1, got {v[key]}')
        if v['MinProcesses'] > v['MaxProcesses']:
            key = 'MinProcesses' if self.later('MinProcesses', 'MaxProcesses') \
                else 'MaxProcesses'
            raise self.error(key, f"MinProcesses {v['MinProcesses']} is above MaxProcesses"
                                  f" {v['MaxProcesses']}{self.default('MaxProcesses')};"
                                  f" raise MaxProcesses or lower MinProcesses")
        if v['Prefork'] is None:
            v['Prefork'] = v['MinProcesses']
        elif v['Prefork'] > v['MaxProcesses']:
            raise self.error('Prefork', f"Prefork {v['Prefork']} is above MaxProcesses"
                                        f" {v['MaxProcesses']}{self.default('MaxProcesses')};"
                                        f" raise MaxProcesses or lower Prefork")
        if v['MaxRequestsJitter'] and not v['MaxRequests']:
            raise self.error('MaxRequestsJitter', 'MaxRequestsJitter has no effect without'
                                                  ' MaxRequests; set MaxRequests or remove it')

    def later(self, key, other):
        lines = self.layout.keyLines
        return lines.get(key.lower(), 0) >= lines.get(other.lower(), 0)

    def default(self, key):
        return '' if key.lower() in self.layout.keyLines else ' (the default)'

    def absolute(self, path):
        return os.path.normpath(os.path.join(self.base, path))

    def writablePath(self, key, value, lines=None):
        path = self.absolute(value)
        parent = os.path.dirname(path)
        if not self.checkFiles:
            return path
        if os.path.isdir(path):
            raise self.error(key, f'{key}: {path} is a directory; name a file in it', lines)
        if not os.path.isdir(parent):
            raise self.error(key, f'{key}: directory {parent} does not exist; create it', lines)
        if os.path.exists(path):
            if not os.access(path, os.W_OK):
                raise self.error(key, f'{key}: {path} is not writable by this user;'
                                      f' fix its owner or permissions', lines)
        elif not os.access(parent, os.W_OK | os.X_OK):
            raise self.error(key, f'{key}: cannot create {path}: directory {parent} is not'
                                  f' writable by this user; fix its permissions', lines)
        return path

    def readableFile(self, key, value):
        path = self.absolute(value)
        if not self.checkFiles:
            return path
        if not os.path.isfile(path):
            raise self.error(key, f'{key}: {path} does not exist or is not a file;'
                                  f' fix the path or create the file')
        if not os.access(path, os.R_OK):
            raise self.error(key, f'{key}: {path} is not readable by this user;'
                                  f' fix its permissions')
        return path

    def listenAddresses(self, addresses):
        lines = sorted(n for n, k in self.layout.lineKeys.items()
                       if k.lower() == 'listen' and not self.layout.sectionAt(n))
        result, seen = [], {}
        for address, lineno in zip(addresses, lines):
            if address.kind == 'unix':
                path = self.absolute(address.path)
                if len(os.fsencode(path)) > UNIX_PATH_MAX:
                    raise ConfigError(f'Listen: socket path {path} is longer than'
                                      f' {UNIX_PATH_MAX} bytes; use a shorter path',
                                      self.filename, lineno)
                if self.checkFiles and not os.path.isdir(os.path.dirname(path)):
                    raise ConfigError(f'Listen: directory {os.path.dirname(path)} does'
                                      f' not exist; create it', self.filename, lineno)
                address = dataclasses.replace(address, path=path)
            address = dataclasses.replace(address, lineno=lineno)
            if address in seen:
                raise ConfigError(f'Listen: {address} is already given on line'
                                  f' {seen[address]}; remove one', self.filename, lineno)
            seen[address] = lineno
            result.append(address)
        return result

    def accounts(self, user, group):
        uid = gid = None
        if user is not None:
            try:
                entry = pwd.getpwuid(int(user)) if _isNumber(user) else pwd.getpwnam(user)
                uid, gid = entry.pw_uid, entry.pw_gid
            except KeyError:
                if not _isNumber(user):
                    raise self.error('User', f'User: no user named {user!r} on this system;'
                                             f' create it or fix the name') from None
                uid = int(user)
        if group is not None:
            try:
                gid = (grp.getgrgid(int(group)) if _isNumber(group)
                       else grp.getgrnam(group)).gr_gid
            except KeyError:
                if not _isNumber(group):
                    raise self.error('Group', f'Group: no group named {group!r} on this system;'
                                              f' create it or fix the name') from None
                gid = int(group)
        return uid, gid

    def busyStarters(self, sections):
        rules = []
        for raw, where in zip(sections, [s for s in self.layout.sections
                                         if s.type == 'busystarter']):
            semaphore = raw.Semaphore and self.writablePath(
                'Semaphore', raw.Semaphore, where.keyLines)
            rules.append(BusyStarter(raw.Priority, semaphore, raw.RunEvery, where.start))
        rules.sort(key=lambda rule: -rule.Priority)
        return rules or [BusyStarter()]


def _isNumber(text):
    return text.isascii() and text.isdigit()
