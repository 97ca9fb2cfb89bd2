"""Cross-key checks of a procman config file (DESIGN §8 "Config file").

After ZConfig has converted every value, ``_Checker`` checks what one value
cannot check alone (MinProcesses <= MaxProcesses, paths that must exist,
users that must exist), each reported at the line of the key it is about,
and builds the ProcmanConfig.
"""

import dataclasses
import grp
import os
import pwd
import resource

from peak_lite.running.procman.configtypes import (
    COMMAND_EXAMPLE, KEYS, BusyStarter, ProcmanConfig, _isNumber)
from peak_lite.running.procman.interfaces import ConfigError
from peak_lite.running.procman.scoreboard import LIMIT

UNIX_PATH_MAX = 107     # sun_path is 108 bytes including the terminating NUL
# A child's request limit (MaxRequests plus its jitter) is the scoreboard slot's
# LIMIT field.
MAX_REQUESTS = 2 ** (8 * LIMIT.size) - 1
# The scoreboard has 2 x MaxProcesses slots, and a child that finds every
# child busy scans them all; Apache prefork's compiled-in ServerLimit is 20000.
# Ten thousand preforked Python processes is already more than one machine holds.
MAX_PROCESSES = 10000


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
        v['listenUid'], v['listenGid'] = self.listenOwner(v['ListenOwner'], v['Listen'])
        v['busyStarters'] = self.busyStarters(raw.busyStarters)
        return ProcmanConfig(self.filename, v, self.layout.keyLines)

    def checkCounts(self, v):
        given = sorted((k for k in ('Prefork', 'MinProcesses', 'MaxProcesses')
                        if v[k] is not None), key=lambda k: self.layout.keyLines.get(k.lower(), 0))
        for key in given:
            if v[key] > MAX_PROCESSES:
                raise self.error(key, f'{key}: {v[key]} is above {MAX_PROCESSES}, the most'
                                      f' children one manager runs; use a smaller number')
        if v['MaxRequests'] > MAX_REQUESTS:
            raise self.error('MaxRequests', f"MaxRequests: {v['MaxRequests']} is above"
                                            f' {MAX_REQUESTS}; use a smaller number, or 0'
                                            f' for no limit')
        if v['MaxRequests'] + v['MaxRequestsJitter'] > MAX_REQUESTS:
            raise self.error('MaxRequestsJitter', f"MaxRequests {v['MaxRequests']} plus"
                                                  f" MaxRequestsJitter {v['MaxRequestsJitter']}"
                                                  f' is above {MAX_REQUESTS}; lower one of them')
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
        if self.checkFiles:
            self.checkProcessLimit(v['MaxProcesses'])
        if v['MaxRequestsJitter'] and not v['MaxRequests']:
            raise self.error('MaxRequestsJitter', 'MaxRequestsJitter has no effect without'
                                                  ' MaxRequests; set MaxRequests or remove it')

    def checkProcessLimit(self, maxProcesses):
        soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
        if os.geteuid() != 0 and soft != resource.RLIM_INFINITY and maxProcesses >= soft:
            raise self.error('MaxProcesses', f'MaxProcesses {maxProcesses}{self.default("MaxProcesses")}'
                                             f' is not below the limit of {soft} processes'
                                             f' this user may run (RLIMIT_NPROC, with the'
                                             f' manager); lower MaxProcesses or raise the'
                                             f' limit (ulimit -u)')

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
                if group is None:
                    # Without a passwd entry there is no primary group: the
                    # children would keep the manager's gid 0.
                    raise self.error('User', f'User: user id {user} has no entry in the'
                                             f' password database, so it has no group;'
                                             f' add a Group line') from None
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

    def listenOwner(self, owner, addresses):
        if owner is None:
            return None, None
        if not any(a.kind == 'unix' for a in addresses):
            raise self.error('ListenOwner', 'ListenOwner has no effect without a'
                                            ' Listen unix:PATH line; add one or remove it')
        user, _, group = owner.partition(':')
        try:
            entry = pwd.getpwuid(int(user)) if _isNumber(user) else pwd.getpwnam(user)
            uid, gid = entry.pw_uid, entry.pw_gid
        except KeyError:
            if not _isNumber(user):
                raise self.error('ListenOwner', f'ListenOwner: no user named {user!r} on this'
                                                f' system; create it or fix the name') from None
            if not group:
                raise self.error('ListenOwner', f'ListenOwner: user id {user} has no entry'
                                                f' in the password database, so it has no'
                                                f' group; write ListenOwner {user}:GROUP')
            uid, gid = int(user), None
        if group:
            try:
                gid = (grp.getgrgid(int(group)) if _isNumber(group)
                       else grp.getgrnam(group)).gr_gid
            except KeyError:
                if not _isNumber(group):
                    raise self.error('ListenOwner', f'ListenOwner: no group named {group!r}'
                                                    f' on this system; create it or fix the'
                                                    f' name') from None
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
