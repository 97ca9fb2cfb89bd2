"""Checks of a procman config file beyond converting each value.

The per-key checks the key table (``configkeys``) names test a value against
the file system; the cross-key checks test what one value cannot check alone
(MinProcesses <= MaxProcesses, a User's group, the process limit).  Each is
reported at the line of the key it is about.  With ``checkFiles`` false
nothing here looks at the file system or the system's limits.
"""

import dataclasses
import grp
import os
import pwd
import resource

from peak_lite.running.procman.configtypes import (
    COMMAND_EXAMPLE, MAX_REQUESTS, _isNumber)
from peak_lite.running.procman.interfaces import ConfigError

__all__ = ['Checker', 'writablePath', 'readableFile', 'listenAddresses']

UNIX_PATH_MAX = 107     # sun_path is 108 bytes including the terminating NUL


class Checker:
    """Where the values come from, and how to report a problem with one."""

    def __init__(self, filename, checkFiles):
        self.filename = filename
        self.checkFiles = checkFiles
        self.base = os.path.dirname(os.path.abspath(filename))

    def error(self, key, message, lines):
        """A ConfigError at the first line ``key`` is on in ``lines`` ({key lower: [line]})."""
        return ConfigError(message, self.filename, (lines.get(key.lower()) or [1])[0])

    def absolute(self, path):
        return os.path.normpath(os.path.join(self.base, path))

    def crossCheck(self, v, lines):
        """Check the top-level values ``v`` against each other; fill in derived values."""
        if v['Command'] is None:
            raise ConfigError(f"no Command given; add a line such as '{COMMAND_EXAMPLE}'",
                              self.filename)
        maxNote = '' if 'maxprocesses' in lines else ' (the default)'
        if v['MinProcesses'] > v['MaxProcesses']:
            key = 'MinProcesses' if _later(lines, 'MinProcesses', 'MaxProcesses') \
                else 'MaxProcesses'
            raise self.error(key, f"MinProcesses {v['MinProcesses']} is above MaxProcesses"
                                  f" {v['MaxProcesses']}{maxNote}; raise"
                                  f" MaxProcesses or lower MinProcesses", lines)
        if v['Prefork'] is None:
            v['Prefork'] = v['MinProcesses']
        elif v['Prefork'] > v['MaxProcesses']:
            raise self.error('Prefork', f"Prefork {v['Prefork']} is above MaxProcesses"
                                        f" {v['MaxProcesses']}{maxNote}; raise"
                                        f" MaxProcesses or lower Prefork", lines)
        if v['MaxRequests'] + v['MaxRequestsJitter'] > MAX_REQUESTS:
            raise self.error('MaxRequestsJitter', f"MaxRequests {v['MaxRequests']} plus"
                                                  f" MaxRequestsJitter {v['MaxRequestsJitter']}"
                                                  f' is above {MAX_REQUESTS}; lower one of'
                                                  f' them', lines)
        if v['MaxRequestsJitter'] and not v['MaxRequests']:
            raise self.error('MaxRequestsJitter', 'MaxRequestsJitter has no effect without'
                                                  ' MaxRequests; set MaxRequests or remove it',
                             lines)
        soft = resource.getrlimit(resource.RLIMIT_NPROC)[0]
        if (self.checkFiles and os.geteuid() != 0 and soft != resource.RLIM_INFINITY
                and v['MaxProcesses'] >= soft):
            raise self.error('MaxProcesses', f"MaxProcesses {v['MaxProcesses']}"
                                             f"{maxNote} is not below the limit"
                                             f' of {soft} processes this user may run'
                                             f' (RLIMIT_NPROC, with the manager); lower'
                                             f' MaxProcesses or raise the limit (ulimit -u)',
                             lines)

    def accounts(self, v, lines):
        """Resolve User/Group into uid/gid, and ListenOwner into (uid, gid)."""
        v['uid'], v['gid'] = self.account('User', v['User'], 'Group', v['Group'], lines)
        if v['ListenOwner'] is not None:
            user, _, group = v['ListenOwner'].partition(':')
            uid, gid = self.account('ListenOwner', user or None, 'ListenOwner', group or None,
                                    lines, primaryGroup=False)
            v['ListenOwner'] = (-1 if uid is None else uid, -1 if gid is None else gid)
            if not any(a.kind == 'unix' for a in v['Listen']):
                raise self.error('ListenOwner', 'ListenOwner has no effect without a Listen'
                                                ' unix:PATH line; add one or remove it', lines)

    def account(self, userKey, user, groupKey, group, lines, primaryGroup=True):
        """(uid, gid) of ``user`` and ``group`` (names or numbers, either may be None).

        Without ``group``, gid is the user's primary group when ``primaryGroup``
        is true (a uid with no password entry then needs a group), else None.
        """
        uid = gid = None
        if user is not None:
            try:
                entry = pwd.getpwuid(int(user)) if _isNumber(user) else pwd.getpwnam(user)
                uid, gid = entry.pw_uid, entry.pw_gid if primaryGroup else None
            except KeyError:
                if not _isNumber(user):
                    raise self.error(userKey, f'{userKey}: no user named {user!r} on this'
                                              f' system; create it or fix the name',
                                     lines) from None
                if group is None and primaryGroup:
                    # Without a passwd entry there is no primary group: the
                    # children would keep the manager's gid 0.
                    raise self.error(userKey, f'{userKey}: user id {user} has no entry in'
                                              f' the password database, so it has no'
                                              f' group; add a Group line', lines) from None
                uid = int(user)
        if group is not None:
            try:
                gid = (grp.getgrgid(int(group)) if _isNumber(group)
                       else grp.getgrnam(group)).gr_gid
            except KeyError:
                if not _isNumber(group):
                    raise self.error(groupKey, f'{groupKey}: no group named {group!r} on'
                                               f' this system; create it or fix the name',
                                     lines) from None
                gid = int(group)
        return uid, gid


def _later(lines, key, other):
    return (lines.get(key.lower()) or [0])[0] >= (lines.get(other.lower()) or [0])[0]


# -- per-key checks, named in the key table: (checker, key, value, lines) -> value --

def writablePath(checker, key, value, lines):
    """A file the manager creates or appends to: its directory must let it."""
    path = checker.absolute(value)
    parent = os.path.dirname(path)
    if not checker.checkFiles:
        return path
    if os.path.isdir(path):
        raise checker.error(key, f'{key}: {path} is a directory; name a file in it', lines)
    if not os.path.isdir(parent):
        raise checker.error(key, f'{key}: directory {parent} does not exist; create it',
                            lines)
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            raise checker.error(key, f'{key}: {path} is not writable by this user;'
                                     f' fix its owner or permissions', lines)
    elif not os.access(parent, os.W_OK | os.X_OK):
        raise checker.error(key, f'{key}: cannot create {path}: directory {parent} is not'
                                 f' writable by this user; fix its permissions', lines)
    return path


def readableFile(checker, key, value, lines):
    path = checker.absolute(value)
    if not checker.checkFiles:
        return path
    if not os.path.isfile(path):
        raise checker.error(key, f'{key}: {path} does not exist or is not a file;'
                                 f' fix the path or create the file', lines)
    if not os.access(path, os.R_OK):
        raise checker.error(key, f'{key}: {path} is not readable by this user;'
                                 f' fix its permissions', lines)
    return path


def listenAddresses(checker, key, addresses, lines):
    """Make unix paths absolute, check their length and directory; no address twice."""
    result, seen = [], {}
    for address, lineno in zip(addresses, lines.get(key.lower(), ())):
        if address.kind == 'unix':
            path = checker.absolute(address.path)
            if len(os.fsencode(path)) > UNIX_PATH_MAX:
                raise ConfigError(f'{key}: socket path {path} is longer than'
                                  f' {UNIX_PATH_MAX} bytes; use a shorter path',
                                  checker.filename, lineno)
            if checker.checkFiles and not os.path.isdir(os.path.dirname(path)):
                raise ConfigError(f'{key}: directory {os.path.dirname(path)} does'
                                  f' not exist; create it', checker.filename, lineno)
            address = dataclasses.replace(address, path=path)
        address = dataclasses.replace(address, lineno=lineno)
        if address in seen:
            raise ConfigError(f'{key}: {address} is already given on line'
                              f' {seen[address]}; remove one', checker.filename, lineno)
        seen[address] = lineno
        result.append(address)
    return result


def statusAddress(checker, key, address, lines):
    """StatusListen: one address, checked as a Listen address is."""
    return listenAddresses(checker, key, [address], lines)[0]
