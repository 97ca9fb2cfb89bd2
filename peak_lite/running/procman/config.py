"""Load and check a procman config file, driven by the key table of ``configkeys``.

The file is ZConfig-like text: ``Key value`` lines, ``<Section [name]>`` ...
``</Section>`` blocks, ``%define NAME VALUE`` and ``$NAME`` substitution,
trailing `` # comments``.  Each line is read once, in order: its key is
looked up in the table, its value converted and bounded there and then, so
an error names the very line.  Then ``configcheck`` runs the cross-key and
file-system checks.  ``probeResources`` runs the table's ``--check`` probes.
"""

import dataclasses
import difflib
import os
import re

from peak_lite.running.procman.configcheck import Checker
from peak_lite.running.procman.configkeys import KEYS, SECTIONS
from peak_lite.running.procman.configtypes import (
    COMMAND_EXAMPLE, DEFAULT_SOCKET_MODE, BusyStarter, ListenAddress, ProcmanConfig)
from peak_lite.running.procman.interfaces import ConfigError

__all__ = ['loadConfig', 'probeResources', 'ProcmanConfig', 'ListenAddress', 'BusyStarter',
           'DEFAULT_SOCKET_MODE']

MAX_FILE_SIZE = 1 << 20
_TABLES = {None: {k.name.lower(): k for k in KEYS}}
_TABLES.update({s.lower(): {k.name.lower(): k for k in keys} for s, keys in SECTIONS.items()})
_SECTION_NAMES = {s.lower(): s for s in SECTIONS}
_NAME = re.compile(r'[^\s()<>/]+')     # a key, directive or section type name
_KEY_LINE = re.compile(r'([A-Za-z][\w.-]*)(?:\s+(.*))?')
_START_TAG = re.compile(r'<\s*([A-Za-z][\w.-]*)(?:\s+([^\s<>/][^<>]*?))?\s*(/?)>')
_END_TAG = re.compile(r'</\s*([A-Za-z][\w.-]*)\s*>')
_DEFINE = re.compile(r'%define\s+([A-Za-z_]\w*)(?:\s+(.*))?')
_REFERENCE = re.compile(r'\$(?:(\$)|\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))')


# -- reading and comment stripping ------------------------------------------

def _readText(path, data=None):
    try:
        if data is None:
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


# -- parsing ------------------------------------------------------------------

@dataclasses.dataclass
class _Block:
    """The values of the top level or of one section, and the lines they are on."""

    type: str = None        # None for the top level, else the section type as in SECTIONS
    tag: str = ''           # the section's start tag as written
    start: int = None
    name: str = ''
    values: dict = dataclasses.field(default_factory=dict)   # Key -> value or [values]
    lines: dict = dataclasses.field(default_factory=dict)    # key lower -> [line, ...]


class _Parser:
    def __init__(self, path):
        self.path = path
        self.top = _Block()
        self.sections = []
        self.current = None
        self.defines = {}

    def error(self, message, lineno):
        return ConfigError(message, self.path, lineno)

    def parse(self, text):
        for lineno, line in enumerate(text.split('\n'), 1):
            stripped = line.strip()
            if stripped[:1] in ('', '#'):
                continue
            name = _NAME.match(stripped.lstrip('<%/'))
            line = _stripComment(line, quoted=bool(name) and name.group().lower() == 'command')
            self.line(line.strip(), lineno)
        if self.current is not None:
            raise self.error(f'section {self.current.tag} is never closed; add'
                             f' </{_NAME.search(self.current.tag).group()}>',
                             self.current.start)
        if not self.top.lines and not self.sections:
            raise self.error(f"the file has no settings; it needs at least a Command line,"
                             f" such as '{COMMAND_EXAMPLE}'", 1)
        return self.top, self.sections

    def line(self, line, lineno):
        if line.startswith('%'):
            self.directive(line, lineno)
        elif line.startswith('</'):
            self.end(line, lineno)
        elif line.startswith('<'):
            self.start(line, lineno)
        else:
            self.keyValue(line, lineno)

    def directive(self, line, lineno):
        word = line.split()[0]
        if word.lower() in ('%include', '%import'):
            raise self.error(f"{word} is not supported in a procman config;"
                             f" put every setting in this one file", lineno)
        m = _DEFINE.fullmatch(line)
        if not m:
            raise self.error(f"cannot read {line!r}: the only directive is"
                             f" '%define NAME VALUE'", lineno)
        name, value = m.group(1).lower(), self.substitute(m.group(2) or '', lineno)
        if self.defines.setdefault(name, value) != value:
            raise self.error(f'%define {m.group(1)} is given twice with different values;'
                             f' keep one', lineno)

    def substitute(self, text, lineno):
        def replace(m):
            if m.group(1):
                return '$'
            name = m.group(2) or m.group(3)
            if name.lower() not in self.defines:
                raise self.error(f"${name} is not defined; define it with"
                                 f" '%define {name} VALUE' or write $$ for a literal $", lineno)
            return self.defines[name.lower()]
        if '$' in _REFERENCE.sub('', text):
            raise self.error(f'a lone $ in {text!r}; write $$ for a literal $, or $NAME',
                             lineno)
        return _REFERENCE.sub(replace, text)

    def start(self, line, lineno):
        m = _START_TAG.fullmatch(line)
        if not m:
            raise self.error(f'cannot read {line!r} as a section tag such as <BusyStarter>',
                             lineno)
        if self.current is not None:
            raise self.error(f'{line}: sections do not nest; close {self.current.tag}'
                             f' (line {self.current.start}) first', lineno)
        kind = _SECTION_NAMES.get(m.group(1).lower())
        if kind is None:
            raise self.error(f'unknown section {line}; the known sections are:'
                             f' <{">, <".join(SECTIONS)}>', lineno)
        name = (m.group(2) or '').strip().lower()
        if name and any(s.type == kind and s.name == name for s in self.sections):
            raise self.error(f'the name in {line} is already used; give each section its'
                             f' own name', lineno)
        block = _Block(kind, line, lineno, name)
        self.sections.append(block)
        self.top.lines.setdefault(kind.lower(), []).append(lineno)
        if not m.group(3):
            self.current = block

    def end(self, line, lineno):
        m = _END_TAG.fullmatch(line)
        if not m:
            raise self.error(f'cannot read {line!r} as a section tag such as </BusyStarter>',
                             lineno)
        if self.current is None:
            raise self.error(f'{line} closes no section; remove it', lineno)
        if m.group(1).lower() != self.current.type.lower():
            raise self.error(f'{line} does not close the section {self.current.tag}'
                             f' opened on line {self.current.start}', lineno)
        self.current = None

    def keyValue(self, line, lineno):
        m = _KEY_LINE.fullmatch(line)
        if not m:
            raise self.error(f"cannot read {line!r} as 'Key value'", lineno)
        block = self.current or self.top
        table = _TABLES[block.type and block.type.lower()]
        key = table.get(m.group(1).lower())
        if key is None:
            raise self.error(_unknownKey(m.group(1), block.type), lineno)
        lines = block.lines.setdefault(key.name.lower(), [])
        if lines and not key.repeat:
            raise self.error(f'{key.name} is given twice; keep one of the two lines', lineno)
        lines.append(lineno)
        try:
            value = key.parse(self.substitute((m.group(2) or '').strip(), lineno))
        except ValueError as e:
            raise self.error(f'{key.name}: {e}', lineno) from None
        outside = key.outOfBounds(value)
        if outside:
            raise self.error(outside, lineno)
        if key.repeat:
            block.values.setdefault(key, []).append(value)
        else:
            block.values[key] = value


def _unknownKey(word, section):
    keys = [k.name for k in (SECTIONS[section] if section else KEYS)]
    close = difflib.get_close_matches(word.lower(), [k.lower() for k in keys], 1)
    hint = (f'did you mean {keys[[k.lower() for k in keys].index(close[0])]}?' if close
            else f'the known keys{" there" if section else ""} are: {", ".join(keys)}')
    return f'unknown key {word!r}{f" in <{section}>" if section else ""}; {hint}'


# -- loading --------------------------------------------------------------------

def loadConfig(path, extraArgs=(), checkFiles=True, data=None):
    """Read, parse and check the procman config file at ``path``.

    Return an IProcmanConfig whose ``Command`` has ``extraArgs`` appended.
    Raise ConfigError, one line ``FILE:LINE: message``, for anything wrong:
    unreadable or non-text file, syntax, unknown key or section, bad value,
    inconsistent values, missing paths, users or groups.

    With ``checkFiles`` false the file system is left alone: paths are made
    absolute but not checked for existence or permissions (to check a config
    meant for another machine).  ``data``, when given, is the file's content as
    read earlier (a reload runs exactly the bytes its check read).
    """
    path = os.fspath(path)
    top, sections = _Parser(path).parse(_readText(path, data))
    checker = Checker(path, checkFiles)
    v = {key.attr: _value(key, top) for key in KEYS}
    checker.crossCheck(v, top.lines)
    v['Command'] = v['Command'] + [os.fspath(a) for a in extraArgs]
    for key in KEYS:
        if key.check and key in top.values:
            v[key.attr] = key.check(checker, key.name, v[key.attr], top.lines)
    checker.accounts(v, top.lines)
    v['busyStarters'] = _busyStarters(checker, sections)
    lines = {k: found[0] for k, found in top.lines.items()}
    return ProcmanConfig(path, v, lines)


def _value(key, block):
    value = block.values.get(key, key.default)
    return list(value) if key.repeat else value


def _busyStarters(checker, sections):
    rules = []
    for section in sections:
        v = {}
        for key in SECTIONS['BusyStarter']:
            v[key.attr] = _value(key, section)
            if key.check and key in section.values:
                v[key.attr] = key.check(checker, key.name, v[key.attr], section.lines)
        rules.append(BusyStarter(lineno=section.start, **v))
    rules.sort(key=lambda rule: -rule.Priority)
    return rules or [BusyStarter()]


def probeResources(cfg):
    """What ``--check`` tries beyond loading: the table's open, lock and bind probes.

    Raise ConfigError for what startup would refuse; see ``configprobe``.
    """
    seen = {}
    for key in KEYS:
        if key.probe:
            key.probe(cfg, seen)
