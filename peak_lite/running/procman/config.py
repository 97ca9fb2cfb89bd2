"""Load and check a procman config file (DESIGN §8 "Config file").

ZConfig parses the file against ``schema.xml`` and converts each value with
the datatypes of ``configtypes``, so a bad value is reported at its own line.
Before that, trailing ``# comments`` are cut off line by line (keeping line
numbers); after it, the cross-key checks of ``configcheck`` run, each
reported at the line of the key it is about.
"""

import dataclasses
import difflib
import functools
import importlib.resources
import io
import os
import re

import ZConfig

from peak_lite.running.procman.configcheck import _Checker
from peak_lite.running.procman.configtypes import (
    COMMAND_EXAMPLE, DEFAULT_SOCKET_MODE, KEYS, SECTION_KEYS, BusyStarter, ListenAddress,
    ProcmanConfig)
from peak_lite.running.procman.interfaces import ConfigError

__all__ = ['loadConfig', 'ProcmanConfig', 'ListenAddress', 'BusyStarter',
           'DEFAULT_SOCKET_MODE']

MAX_FILE_SIZE = 1 << 20
_CANONICAL = {k.lower(): k for k in KEYS + sum(SECTION_KEYS.values(), ())}
_SECTIONS = {k.lower(): k for k in SECTION_KEYS}


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
