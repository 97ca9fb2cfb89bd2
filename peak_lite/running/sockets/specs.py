"""Socket specs: ``unix:PATH[:MODE]``, ``HOST:PORT``, ``[V6]:PORT``, ``fd:N``, and
``ListenOwner``'s ``USER[:GROUP]``; the constants every socket user shares."""

import dataclasses
import grp
import ipaddress
import pwd
import re
import socket

from zope.interface import implementer

from peak_lite.running.interfaces import ISocketAddress

__all__ = ['SocketAddress', 'parseAddress', 'parseOwner', 'BACKLOG', 'DEFAULT_SOCKET_MODE',
           'CARRY_ENV', 'CHILD_ENV', 'FORMS']

BACKLOG = 1024
#: Mode of a ``unix:`` socket file given no ``:MODE``: owner only.
DEFAULT_SOCKET_MODE = 0o600
CARRY_ENV = 'PEAK_PROCMAN_FDS'    # a manager's listeners, carried across its exec
CHILD_ENV = 'PEAK_LISTEN_FDS'     # the descriptors a child serves: 0,3,4...
FORMS = 'unix:/path[:mode], host:port, [v6addr]:port or fd:N'

_HOSTNAME = re.compile(r'(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?')


@implementer(ISocketAddress)
@dataclasses.dataclass(frozen=True)
class SocketAddress:
    """See ISocketAddress."""

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

    @property
    def socketFamily(self):
        """socket.AF_UNIX, AF_INET or AF_INET6; None for kind 'fd'."""
        return {'unix': socket.AF_UNIX, 'inet': socket.AF_INET,
                'inet6': socket.AF_INET6}.get(self.family or self.kind)

    @property
    def sockaddr(self):
        """What ``bind()`` takes: the path, or ``(host, port)``; None for kind 'fd'."""
        return self.path if self.kind == 'unix' else (
            (self.host, self.port) if self.kind == 'tcp' else None)


def parseAddress(text):
    """Return the SocketAddress that ``text`` spells; ValueError says what is expected.

    ``:PORT`` with no host means every IPv4 interface.
    """
    if not isinstance(text, str) or not text:
        raise ValueError(f'expected {FORMS}, got {text!r}')
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
        return SocketAddress('unix', path=path, mode=mode)
    if text.startswith('fd:'):
        if not text[3:].isdigit() or not text[3:].isascii():
            raise ValueError(f'expected a descriptor number after fd: in {text!r}')
        return SocketAddress('fd', fd=int(text[3:]))
    host, sep, port = text.rpartition(':')
    if not sep:
        raise ValueError(f'expected {FORMS}, got {text!r}')
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
        family, host = 'inet', host or '0.0.0.0'
        if re.fullmatch(r'[0-9.]+', host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise ValueError(f'{host!r} in {text!r} is not an IPv4 address') from None
        elif not _HOSTNAME.fullmatch(host):
            raise ValueError(f'{host!r} in {text!r} is not a host name or address')
    return SocketAddress('tcp', host=host, port=int(port), family=family)


def parseOwner(text):
    """``USER[:GROUP]`` or ``:GROUP`` -> ``(uid, gid)``, -1 for the part not given.

    Names must exist in the password and group databases; numbers are used
    as they are.  ValueError says which name is unknown.
    """
    text = (text or '').strip()
    user, sep, group = text.partition(':')
    if (not user and not group) or (sep and not group) or ' ' in text:
        raise ValueError(f'expected USER, USER:GROUP or :GROUP (names or numbers),'
                         f' got {text!r}')
    return _lookup(user, pwd.getpwnam, 'user'), _lookup(group, grp.getgrnam, 'group')


def _lookup(name, find, what):
    if not name:
        return -1
    if name.isascii() and name.isdigit():
        if int(name) >= 2**32 - 1:
            raise ValueError(f'{name} is not a valid {what} id; ids are below 4294967295')
        return int(name)
    try:
        entry = find(name)
    except KeyError:
        raise ValueError(f'no {what} named {name!r} on this system; create it, fix the'
                         f' name or give a number') from None
    return entry[2]
