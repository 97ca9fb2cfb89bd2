"""The values of a procman config file: the parsed value classes
(ListenAddress, BusyStarter, ProcmanConfig) and the converters the key table
(``configkeys``) names for each key, so a bad value is reported at its own
line.
"""

import dataclasses
import keyword
import math
import re
import shlex

from zope.interface import implementer

from peak_lite.running.procman.interfaces import ConfigError, IBusyStarter, IProcmanConfig
from peak_lite.running.procman.scoreboard import LIMIT
from peak_lite.running.sockets import (
    DEFAULT_SOCKET_MODE, SocketAddress as ListenAddress, parseAddress)

__all__ = ['ProcmanConfig', 'ListenAddress', 'BusyStarter', 'DEFAULT_SOCKET_MODE',
           'COMMAND_EXAMPLE', 'MAX_PROCESSES', 'MAX_REQUESTS']

MAX_DURATION = 365 * 86400.0
MAX_FD = 2**31 - 1      # a C int
# The scoreboard has 2 x MaxProcesses slots, and a child that finds every
# child busy scans them all; Apache prefork's compiled-in ServerLimit is 20000.
# Ten thousand preforked Python processes is already more than one machine holds.
MAX_PROCESSES = 10000
# A child's request limit (MaxRequests plus its jitter) is the scoreboard
# slot's LIMIT field.
MAX_REQUESTS = 2 ** (8 * LIMIT.size) - 1
COMMAND_EXAMPLE = 'Command CGI MyPackage:MyApp'


# -- parsed values ----------------------------------------------------------

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


# -- converters (named in the key table); ValueError carries the message ------

_INT = re.compile(r'[+-]?[0-9]{1,15}')    # more digits is a typo, not a count
_DURATION = re.compile(r'([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m|h)?')
_UNITS = {None: 1.0, 's': 1.0, 'ms': 0.001, 'm': 60.0, 'h': 3600.0}


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


def reloadMode(text):
    if text not in ('overlap', 'stop'):
        raise ValueError(f"expected 'overlap' or 'stop', got {text!r}")
    return text


def onOff(text):
    if text not in ('on', 'off'):
        raise ValueError(f"expected 'on' or 'off', got {text!r}")
    return text == 'on'


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


def ownerSpec(text):
    """``USER``, ``USER:GROUP`` or ``:GROUP``: checked here, resolved by configcheck."""
    user, sep, group = text.partition(':')
    if len(text.split()) != 1 or not (user or group) or (sep and not group) or ':' in group:
        raise ValueError(f'expected USER, USER:GROUP or :GROUP (names or numbers),'
                         f' got {text!r}')
    for name in (user, group):
        if name:
            accountName(name)
    return text


def importSpec(text):
    module, _, attrs = text.partition(':')
    for part in module.split('.') + (attrs.split('.') if attrs else []):
        if not part.isidentifier() or keyword.iskeyword(part):
            raise ValueError(f"expected a module name such as 'zope.publisher.browser'"
                             f" or 'pkg.module:Class', got {text!r}")
    return text


def listenAddress(text):
    address = parseAddress(text)
    if address.kind == 'fd' and address.fd > MAX_FD:
        raise ValueError(f'descriptor {address.fd} in {text!r} is above {MAX_FD}')
    return address


def _isNumber(text):
    return text.isascii() and text.isdigit()
