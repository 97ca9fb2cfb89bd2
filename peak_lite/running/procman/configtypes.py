"""The values of a procman config file (DESIGN §8 "Config file").

The parsed value classes (ListenAddress, BusyStarter, ProcmanConfig) and the
ZConfig datatypes that ``schema.xml`` names to convert each value, so a bad
value is reported at its own line.
"""

import dataclasses
import ipaddress
import keyword
import math
import re
import shlex

from zope.interface import implementer

from peak_lite.running.procman.interfaces import (
    ConfigError, IBusyStarter, IListenAddress, IProcmanConfig)

__all__ = ['ProcmanConfig', 'ListenAddress', 'BusyStarter', 'DEFAULT_SOCKET_MODE',
           'KEYS', 'SECTION_KEYS', 'COMMAND_EXAMPLE']

#: Mode of a ``unix:`` socket file given no ``:mode``: owner only.  Widen it
#: (``:0660``) when the web server runs as another user of the same group.
DEFAULT_SOCKET_MODE = 0o600
MAX_DURATION = 365 * 86400.0

KEYS = ('Command', 'PidFile', 'StdErr', 'Prefork', 'MinProcesses',
        'MaxProcesses', 'StartInterval', 'IdleTimeout', 'MaxRequests',
        'MaxRequestsJitter', 'RequestTimeout', 'StopTimeout', 'KillTimeout',
        'ReloadCheckTimeout',
        'Listen', 'ChildConfig', 'User', 'Group', 'import')
SECTION_KEYS = {'BusyStarter': ('Priority', 'Semaphore', 'RunEvery')}
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


def _isNumber(text):
    return text.isascii() and text.isdigit()
