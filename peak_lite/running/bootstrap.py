"""Bootstrap (the ``peak`` script's top command), shortcuts, Alias, Help and ``main``."""

import importlib.metadata
import os
import re

from zope.interface import implementer

from peak_lite.binding import NOT_FOUND
from peak_lite.config import lookupProperty
from peak_lite.running.abstract import AbstractCommand, AbstractInterpreter, summaryOf
from peak_lite.running.interfaces import EXIT_OK, ICmdLineAppFactory, InvocationError, LoadError
from peak_lite.running.trampoline import runMain
from peak_lite.util.imports import importObject, importString

__all__ = ['Bootstrap', 'Alias', 'Help', 'main', 'resolveCommand', 'shortcutEntryPoints',
           'shebangWords', 'SHORTCUT_GROUP', 'SHORTCUT_PREFIX']

SHORTCUT_GROUP = 'peak_lite.commands'
SHORTCUT_PREFIX = 'peak.running.shortcuts.'
_SHORTCUT_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_-]*$')


def shortcutEntryPoints():
    """``{name: EntryPoint}`` of group ``peak_lite.commands``; the first of a name wins."""
    found = {}
    for ep in importlib.metadata.entry_points(group=SHORTCUT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def _loadEntryPoint(ep):
    try:
        return ep.load()
    except Exception as e:
        raise LoadError(f"shortcut {ep.name!r} ({ep.value}, from the {SHORTCUT_GROUP} entry"
                        f" points) failed to load: {type(e).__name__}: {e}") from e


def findShortcut(context, name):
    """The factory for shortcut ``name``, or None.

    The configuration property ``peak.running.shortcuts.NAME`` (an object or
    an import string) wins over an entry point of group ``peak_lite.commands``.
    """
    if not _SHORTCUT_NAME.match(name):
        return None
    value = lookupProperty(context, SHORTCUT_PREFIX + name, default=NOT_FOUND)
    if value is not NOT_FOUND:
        return importObject(value)
    ep = shortcutEntryPoints().get(name)
    return None if ep is None else _loadEntryPoint(ep)


def shebangWords(path):
    """The words after ``peak`` on ``path``'s ``#!`` line, or None.

    Handles ``#!/usr/bin/env -S peak runIni``, ``#!invoke peak procman`` and
    ``#!/venv/bin/peak runIni``.  None if the file has no ``#!`` line or the
    line does not run ``peak``.
    """
    with open(path, 'rb') as f:
        first = f.readline(4096)
    if not first.startswith(b'#!'):
        return None
    words = first[2:].decode('utf-8', 'replace').split()
    for i, word in enumerate(words):
        if os.path.basename(word) == 'peak':
            return words[i + 1:]
    return None


def resolveCommand(context, name):
    """The command factory ``name`` stands for, or a ``('file', words)`` pair.

    ``name`` is a shortcut, ``import:pkg.mod:obj``, ``pkg.mod:obj``, or the path
    of an executable config file (then the words of its ``#!`` line after
    ``peak`` are returned for re-bootstrapping).  Unknown names raise
    InvocationError listing the shortcuts.
    """
    if name.startswith('import:'):
        return importString(name[len('import:'):])
    factory = findShortcut(context, name)
    if factory is not None:
        return factory
    if os.path.isfile(name):
        words = shebangWords(name)
        if not words:
            raise InvocationError(
                f"{name}: not a command: a config file given to peak must start with a"
                f" '#!... peak COMMAND' line; or run 'peak runIni {name}'")
        return ('file', words)
    if ':' in name:
        return importString(name)
    names = ', '.join(sorted(shortcutEntryPoints()))
    raise InvocationError(
        f"unknown command {name!r}: not a shortcut, an import:pkg.mod:obj or pkg.mod:obj spec,"
        f" or a file; shortcuts are: {names}; see 'peak --help'")


def formatShortcuts():
    lines = []
    for name, ep in sorted(shortcutEntryPoints().items(), key=lambda item: item[0].lower()):
        try:
            summary = summaryOf(ep.load()) or ep.value
        except Exception as e:
            summary = f"(unavailable: {type(e).__name__}: {e})"
        lines.append(f"  {name:<12}  {summary}")
    return "Shortcuts:\n" + "\n".join(lines)


class Bootstrap(AbstractInterpreter):
    """Run a shortcut, an import:pkg.mod:obj or pkg.mod:obj spec, or an executable config file"""

    usage = """
Usage: peak NAME [arguments...]

NAME is a shortcut listed below, import:pkg.mod:obj, pkg.mod:obj, or the path
of a config file whose first line is '#!... peak COMMAND' (or '#!invoke peak
COMMAND'), which runs as 'peak COMMAND FILE [arguments...]'.  Everything after
NAME belongs to that command.  Set PEAK_DEBUG=1 to see tracebacks of errors.
"""

    _fromShebang = False     # set when re-bootstrapping a file's '#!' line, to stop loops

    def getUsage(self):
        return f"{super().getUsage()}\n{formatShortcuts()}\n"

    def interpret(self, name):
        factory = resolveCommand(self.getParentComponent(), name)
        if isinstance(factory, tuple):
            words = factory[1]
            if self._fromShebang:
                raise InvocationError(
                    f"{name}: its '#!' line runs another config file ({' '.join(words)});"
                    f" name a command such as runIni or procman after 'peak'")
            return self.getSubcommand(
                type(self), _fromShebang=True, argv=[self.commandName, *words, *self.args])
        return self.getSubcommand(factory)


@implementer(ICmdLineAppFactory)
class Alias:
    """A command that stands for other words: ``Alias(command=['runIni', 'app.ini'])``.

    Calling it (as a command factory) re-bootstraps, eagerly, with those
    words inserted before the arguments it was given.
    """

    def __init__(self, command):
        if isinstance(command, str) or not command or \
                not all(isinstance(w, str) for w in command):
            raise InvocationError(
                f"Alias(command=...) needs a non-empty list of words, got {command!r}")
        self.command = list(command)

    def __call__(self, parentComponent, componentName=None, argv=None, stdin=None,
                 stdout=None, stderr=None, environ=None, **attrs):
        argv = list(argv or ['alias'])
        return Bootstrap(parentComponent, componentName,
                         argv=[argv[0], *self.command, *argv[1:]], stdin=stdin,
                         stdout=stdout, stderr=stderr, environ=environ, **attrs)

    def __repr__(self):
        return f"Alias(command={self.command!r})"


class Help(AbstractCommand):
    """List the shortcuts, or show one command's usage: peak help [NAME]"""

    usage = "Usage: peak help [NAME]"

    def _run(self):
        if not self.args:
            self.stdout.write(Bootstrap.newInterpreter(
                self.getParentComponent(), argv=['peak', '--help'], stdout=self.stdout,
                stdin=self.stdin, stderr=self.stderr, environ=self.environ).getUsage())
            return EXIT_OK
        name = self.args[0]
        factory = resolveCommand(self.getParentComponent(), name)
        if isinstance(factory, tuple):
            self.stdout.write(f"{name} runs as: peak {' '.join(factory[1])} {name}\n")
            return EXIT_OK
        usage = getattr(factory, 'usage', None)
        summary = summaryOf(factory)
        text = '\n\n'.join(p for p in (summary, usage.strip() if usage else '') if p)
        self.stdout.write((text or f"{name}: no usage text") + "\n")
        return EXIT_OK


def main(argv=None, stdin=None, stdout=None, stderr=None, environ=None):
    """The ``peak`` script: ``runMain(Bootstrap, ...)``; returns the exit status."""
    return runMain(Bootstrap, argv, stdin, stdout, stderr, environ)
