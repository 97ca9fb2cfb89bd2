"""Parse PEAK-style .ini text into entries; values are compiled, never evaluated here."""

import re
from dataclasses import dataclass

from peak_lite.config.interfaces import ConfigSyntaxError, UnknownSection

__all__ = ['IniEntry', 'parseIni', 'SPECIAL_SECTIONS', 'PROPERTY_SECTION']

PROPERTY_SECTION = 'properties'
SPECIAL_SECTIONS = {
    'load settings from': 'Load Settings From',
    'import on demand': 'Import on Demand',
    'component factories': 'Component Factories',
    'named services': 'Named Services',
}

_SEGMENT = r'[A-Za-z0-9_+\-]+'
_PREFIX_RE = re.compile(rf'^{_SEGMENT}(\.{_SEGMENT})*$')
_PROPERTY_KEY_RE = re.compile(rf'^({_SEGMENT}(\.{_SEGMENT})*)(\.\*)?$|^\*$')
_HEADER_RE = re.compile(r'^\[([^\[\]]*)\]\s*$')


@dataclass(frozen=True)
class IniEntry:
    """One ``key = expression`` of a file.

    ``kind`` is ``'properties'`` or the canonical name of a special section;
    ``name`` is the full property name for property sections (``section.key``),
    else the key as written.  ``code`` is the compiled expression.
    """

    kind: str
    section: str
    key: str
    name: str
    source: str
    code: object
    filename: str
    lineno: int


def parseIni(text, filename='<string>'):
    """Return the list of IniEntry in ``text``, in file order.

    Raises ConfigSyntaxError (or UnknownSection) naming file:line for anything
    else, and never any other exception.
    """
    entries = []
    section = kind = None
    pending = None          # [key, first lineno, [source lines], section, kind]
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped[0] in '#;':
            continue
        if raw[:1].isspace():
            if pending is None:
                raise ConfigSyntaxError(
                    "indented line continues no 'name = expression' line: remove the "
                    "indentation or put it under a key", filename, lineno, section)
            pending[2].append(line)
            continue
        if pending is not None:
            entries.append(_finish(pending, filename))
            pending = None
        header = _HEADER_RE.match(line)
        if header:
            section, kind = _section(header.group(1), filename, lineno)
            continue
        if line.startswith('['):
            raise ConfigSyntaxError(
                f"malformed section header {line!r}: write it as [section name]",
                filename, lineno)
        key, eq, value = line.partition('=')
        key = key.strip()
        if not eq:
            raise ConfigSyntaxError(
                f"expected 'name = expression', found {stripped!r}", filename, lineno, section)
        if section is None:
            raise ConfigSyntaxError(
                f"{key!r} is defined before any [section] header: add one above it",
                filename, lineno)
        _checkKey(kind, section, key, filename, lineno)
        pending = [key, lineno, [value], section, kind]
    if pending is not None:
        entries.append(_finish(pending, filename))
    return entries


def _section(name, filename, lineno):
    name = name.strip()
    if not name:
        raise ConfigSyntaxError("empty section name '[]'", filename, lineno)
    if ' ' in name or '\t' in name:
        canonical = SPECIAL_SECTIONS.get(' '.join(name.split()).lower())
        if canonical is None:
            known = ', '.join(f'[{s}]' for s in SPECIAL_SECTIONS.values())
            raise UnknownSection(
                f"unknown section [{name}]: a name with spaces must be one of {known}; "
                f"a property prefix has no spaces", filename, lineno)
        return canonical, canonical
    if not _PREFIX_RE.match(name):
        raise ConfigSyntaxError(
            f"invalid property prefix [{name}]: use dot-separated segments of letters, "
            f"digits, '_', '+' or '-'", filename, lineno)
    return name, PROPERTY_SECTION


def _checkKey(kind, section, key, filename, lineno):
    if not key:
        raise ConfigSyntaxError("missing name before '='", filename, lineno, section)
    if kind == PROPERTY_SECTION or kind == 'Named Services':
        ok = _PROPERTY_KEY_RE.match(key) and not (kind == 'Named Services' and '*' in key)
        what = "a property name (dot-separated segments, optionally ending in '*')"
    elif kind == 'Import on Demand':
        ok = key.isidentifier()
        what = "a Python identifier"
    elif kind == 'Component Factories':
        ok = _PREFIX_RE.match(key) and all(p.isidentifier() for p in key.split('.'))
        what = "the dotted name of an interface"
    else:   # Load Settings From
        ok = key == 'file'
        what = "'file'"
    if not ok:
        raise ConfigSyntaxError(f"invalid name {key!r}: expected {what}",
                                filename, lineno, section, key)


def _finish(pending, filename):
    key, lineno, lines, section, kind = pending
    joined = '\n'.join(lines)
    source = joined.strip()
    if not source:
        raise ConfigSyntaxError("missing expression after '='", filename, lineno, section, key)
    try:
        # Parentheses let an expression span continuation lines; the closing
        # one goes on its own line so a trailing comment cannot swallow it.
        code = compile(f"({joined}\n)", f"{filename}:{lineno}", 'eval')
    except SyntaxError as e:
        line = min(lineno + (e.lineno - 1 if e.lineno else 0), lineno + len(lines) - 1)
        raise ConfigSyntaxError(
            f"not a Python expression: {e.msg}: {source!r}", filename, line, section, key
        ) from None
    except (ValueError, RecursionError, MemoryError) as e:
        raise ConfigSyntaxError(
            f"not a Python expression ({type(e).__name__}: {e}): {source[:80]!r}",
            filename, lineno, section, key) from None
    if kind == PROPERTY_SECTION:
        name = f"{section}.{key}"
    else:
        name = key
    return IniEntry(kind, section, key, name, source, code, filename, lineno)
