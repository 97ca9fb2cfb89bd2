"""Load .ini files into a service area's RuleSet, handling the special sections."""

import os

from zope.interface.interfaces import IInterface

from peak_lite.config.iniparser import PROPERTY_SECTION, parseIni
from peak_lite.config.interfaces import ConfigError, ConfigSyntaxError, ConfigValueError
from peak_lite.util.imports import importString
from peak_lite.util.interfaces import ImportStringError

__all__ = ['loadIniFile', 'loadIniText']


def loadIniFile(area, rules, path, _including=()):
    """Read ``path`` and load it into ``rules`` (the RuleSet of ``area``)."""
    path = os.fspath(path)
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read configuration file: {e.strerror or e}", path) from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"configuration file is not UTF-8 text: {e}", path) from e
    loadIniText(area, rules, text, path, _including)


def loadIniText(area, rules, text, filename='<string>', _including=()):
    """Parse ``text`` and apply its entries, in order, to ``rules``."""
    key = os.path.abspath(filename) if not filename.startswith('<') else filename
    if key in _including:
        raise ConfigError(
            "configuration files include each other: "
            + ' -> '.join(list(_including) + [key]), filename)
    including = tuple(_including) + (key,)
    rules.files.append(filename)
    for entry in parseIni(text, filename):
        if entry.kind == PROPERTY_SECTION:
            rules.defineProperty(entry)
        elif entry.kind == 'Named Services':
            rules.defineService(entry)
        elif entry.kind == 'Import on Demand':
            rules.defineAlias(entry.key, _stringValue(rules, area, entry, 'a module name'))
        elif entry.kind == 'Component Factories':
            rules.defineFactory(_interface(entry), entry)
        else:   # Load Settings From
            _include(area, rules, entry, filename, including)


def _stringValue(rules, area, entry, what):
    value = rules.evaluate(entry, area)
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigValueError(f"expected {what} (a string), got {value!r}",
                               entry.filename, entry.lineno, entry.section, entry.key)
    return os.fspath(value)


def _include(area, rules, entry, filename, including):
    path = _stringValue(rules, area, entry, 'a file name')
    if not os.path.isabs(path) and not filename.startswith('<'):
        path = os.path.join(os.path.dirname(os.path.abspath(filename)), path)
    try:
        loadIniFile(area, rules, path, including)
    except ConfigError as e:
        if e.filename == path and e.lineno is None:
            raise ConfigError(f"{e.problem}: {path}", entry.filename, entry.lineno,
                              entry.section, entry.key) from e
        raise


def _interface(entry):
    try:
        iface = importString(entry.key)
    except ImportStringError as e:
        raise ConfigSyntaxError(f"cannot import the interface: {e}", entry.filename,
                                entry.lineno, entry.section, entry.key) from e
    if not IInterface.providedBy(iface):
        raise ConfigSyntaxError(f"{entry.key} is {iface!r}, not an interface",
                                entry.filename, entry.lineno, entry.section, entry.key)
    return iface
