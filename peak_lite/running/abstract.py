"""AbstractCommand and AbstractInterpreter: the base classes of every command.

Writing a command::

    class Greet(AbstractCommand):
        '''Print a greeting'''                 # the line `peak --help` shows
        usage = "Usage: peak Greet [options] [NAME]"
        shout = Flag('--shout', help="use capitals")

        def _run(self):
            text = f"hello {self.args[0] if self.args else 'world'}"
            self.stdout.write((text.upper() if self.shout else text) + "\\n")
            return 0

Writing an interpreter (calling it returns the interpreted subject)::

    class Shout(AbstractInterpreter):
        usage = "Usage: peak Shout SPEC [arguments...]"

        def interpret(self, spec):
            factory = importString(spec)       # self.args == [spec, *rest]
            return self.getSubcommand(factory) # gets argv [spec, *rest] and our I/O
"""

import inspect
import os
import sys

from zope.interface import implementer

from peak_lite import binding
from peak_lite.binding import Make
from peak_lite.config import ConfigError
from peak_lite.running.assembly import buildCommitted, describeFailure
from peak_lite.running.interfaces import (
    EXIT_OK, ICmdLineApp, ICmdLineAppFactory, InvocationError, IRerunnableCGI,
    IWSGIApplication, LoadError, RunningError)
from peak_lite.running.options import Flag, formatOptions, optionsOf, parseOptions

__all__ = ['AbstractCommand', 'AbstractInterpreter', 'CallableCommand', 'commandFactoryFor',
           'isCommandFactory', 'summaryOf']

IO_NAMES = ('stdin', 'stdout', 'stderr', 'environ')
DEBUG_ENV = 'PEAK_DEBUG'
_FALLBACK = {
    'stdin': lambda: sys.stdin, 'stdout': lambda: sys.stdout,
    'stderr': lambda: sys.stderr, 'environ': lambda: os.environ,
}


def _inherited(name):
    """A recipe: the nearest ancestor command's ``name``, else the process's own."""
    def recipe(self):
        for ob in binding.iterParents(binding.getParentComponent(self)):
            if isinstance(ob, AbstractCommand):
                return getattr(ob, name)
        return _FALLBACK[name]()
    recipe.__name__ = f"inherited_{name}"
    return recipe


def summaryOf(ob):
    """The first line of ``ob``'s docstring, for listings."""
    doc = getattr(ob, '__doc__', None) or ''
    lines = doc.strip().splitlines()
    return lines[0].strip() if lines else ''


@implementer(ICmdLineAppFactory)
class CommandClass(binding.ComponentClass):
    """Metaclass of AbstractCommand: every command class is an ICmdLineAppFactory.

    Declared on the metaclass because zope.interface does not pass a class's
    ``@provider`` declarations on to its subclasses.
    """


@implementer(ICmdLineApp)
class AbstractCommand(binding.Component, metaclass=CommandClass):
    """A command-line app and its own factory; see ICmdLineApp, ICmdLineAppFactory.

    ``Cmd(parentComponent, componentName=None, argv=None, stdin=None,
    stdout=None, stderr=None, environ=None, **attrs)``.  I/O not given is
    inherited from the nearest ancestor command, and only at the very top
    from the process (the ``peak`` script passes its own explicitly).

    ``argv[0]`` is the command's name; the rest is parsed at construction
    against the ``Option``/``Flag`` attributes declared on the class.  Parsing
    stops at the first positional argument; it and everything after it are
    ``self.args``.  Bad options raise InvocationError when the command is
    built.  ``--help`` makes ``run()`` print ``getUsage()`` and return 0.

    Subclasses override ``_run()``; ``run()`` returns its result.

    ``--debug``, which every command accepts, sets ``PEAK_DEBUG=1`` in the
    command's ``environ``: errors are then reported with their traceback,
    by this command and by everything it starts.
    """

    usage = "Usage: peak COMMAND [options] [arguments...]"

    debug = Flag('--debug', help="show the traceback of errors (the same as PEAK_DEBUG=1)")

    argv = Make(lambda self: ['peak'], suggestParent=False)
    stdin = Make(_inherited('stdin'), suggestParent=False)
    stdout = Make(_inherited('stdout'), suggestParent=False)
    stderr = Make(_inherited('stderr'), suggestParent=False)
    environ = Make(_inherited('environ'), suggestParent=False)

    def __init__(self, parentComponent=binding.NOT_GIVEN, componentName=None, argv=None,
                 stdin=None, stdout=None, stderr=None, environ=None, **attrs):
        given = dict(argv=argv, stdin=stdin, stdout=stdout, stderr=stderr, environ=environ)
        attrs.update({k: v for k, v in given.items() if v is not None})
        if 'argv' in attrs:
            attrs['argv'] = list(attrs['argv'])
            if not attrs['argv']:
                raise InvocationError(
                    f"{type(self).__name__}: argv must hold at least the command name, got []")
        super().__init__(parentComponent, componentName, **attrs)
        values, self.args, self.helpRequested = parseOptions(
            self.commandName, self.argv[1:], optionsOf(type(self)))
        self.applyOptions(values)

    def applyOptions(self, values):
        """Set the parsed option ``values`` (``{attrName: value}``) on this command."""
        for name, value in values.items():
            setattr(self, name, value)
        if values.get('debug'):
            self.environ[DEBUG_ENV] = '1'

    @property
    def commandName(self):
        return os.path.basename(str(self.argv[0])) or type(self).__name__

    def getUsage(self):
        """The usage text: the class's ``usage``, then its options."""
        return f"{self.usage.strip()}\n\n{formatOptions(optionsOf(type(self)))}\n"

    def run(self):
        """See ICmdLineApp."""
        if self.helpRequested:
            self.stdout.write(self.getUsage())
            return EXIT_OK
        return self._run()

    def _run(self):
        raise InvocationError(f"{self.commandName}: {type(self).__name__} does nothing;"
                              f" a subclass must define _run()")

    def getSubcommand(self, executable, **kw):
        """Build ``executable`` as a command that inherits this command's I/O.

        ``kw`` may override ``argv`` (default: ``self.args``, so the
        subcommand's ``argv[0]`` is the word that named it), ``stdin``,
        ``stdout``, ``stderr``, ``environ``, ``parentComponent`` (default:
        this command) and ``componentName``; other keywords go to the
        factory.  ``executable`` is anything ``commandFactoryFor`` accepts.
        """
        parent = kw.pop('parentComponent', self)
        name = kw.pop('componentName', None)
        kw.setdefault('argv', list(self.args) or [self.commandName])
        for io in IO_NAMES:
            kw.setdefault(io, getattr(self, io))
        return commandFactoryFor(executable, parent)(parent, name, **kw)


class _UsageCommand:
    """What an interpreter given ``--help`` returns: prints the usage when run."""

    def __init__(self, text, stdout):
        self.text, self.stdout = text, stdout

    def run(self):
        self.stdout.write(self.text)
        return EXIT_OK


implementer(ICmdLineApp)(_UsageCommand)


class InterpreterClass(CommandClass):
    """Metaclass of AbstractInterpreter: calling the class interprets.

    ``Interp(parent, argv=...)`` builds the interpreter, then returns
    ``interpreter.interpretArguments()``: the subject, built and assembled,
    inside a transaction committed before it is returned (``buildCommitted``;
    an interpreter called while another builds joins its transaction).
    ``Interp.newInterpreter(...)`` returns the interpreter object itself.
    """

    def __call__(cls, *args, **kw):
        return buildCommitted(lambda: cls.newInterpreter(*args, **kw).interpretArguments())

    def newInterpreter(cls, *args, **kw):
        return super().__call__(*args, **kw)


class AbstractInterpreter(AbstractCommand, metaclass=InterpreterClass):
    """A factory whose call *is* interpreting: it returns the subject, not itself.

    ``Interp(parent, argv=[name, *options, SUBJECT, *rest], ...)`` parses its
    options, then calls ``self.interpret(SUBJECT)`` with ``self.args`` equal
    to ``[SUBJECT, *rest]`` and returns the result, which should be built with
    ``self.getSubcommand(factory)`` so it gets ``argv=[SUBJECT, *rest]`` and
    this interpreter's I/O.  Subcommands are created under this
    interpreter's parent (the interpreter itself is discarded).

    Errors: no SUBJECT raises InvocationError with the usage synopsis; an
    exception from ``interpret`` that is not a RunningError or a
    ConfigError becomes a LoadError (exit 3) naming the subject.  With
    ``--help`` the result is a command that prints the usage.
    """

    usage = "Usage: peak INTERPRETER SUBJECT [arguments...]"

    def interpretArguments(self):
        if self.helpRequested:
            return _UsageCommand(self.getUsage(), self.stdout)
        if not self.args:
            synopsis = self.usage.strip().splitlines()[0]
            raise InvocationError(f"{self.commandName}: missing argument; {synopsis}")
        subject = self.args[0]
        try:
            return self.interpret(subject)
        except (RunningError, ConfigError):
            raise
        except Exception as e:
            raise LoadError(f"{self.commandName} {subject}: the application failed to load:"
                            f" {describeFailure(e)}") from e

    def interpret(self, subject):
        """Return the subject named by ``subject``, built; ``self.args[1:]`` are its args."""
        raise NotImplementedError(f"{type(self).__name__} must define interpret()")

    def run(self):
        """An interpreter made with newInterpreter() builds its subject committed, and runs it."""
        subject = buildCommitted(self.interpretArguments)
        return subject.run()

    def getSubcommand(self, executable, **kw):
        kw.setdefault('parentComponent', self.getParentComponent())
        return super().getSubcommand(executable, **kw)


@implementer(ICmdLineApp)
class CallableCommand:
    """Runs a zero-argument callable; its result is the exit code (None means 0)."""

    def __init__(self, func):
        self.func = func

    def run(self):
        result = self.func()
        return EXIT_OK if result is None else result


def isCommandFactory(ob):
    """True for an ICmdLineAppFactory, or a class whose instances are ICmdLineApps."""
    if ICmdLineAppFactory.providedBy(ob):
        return True
    return isinstance(ob, type) and ICmdLineApp.implementedBy(ob)


def commandFactoryFor(ob, context=None):
    """An ICmdLineAppFactory for ``ob`` (see IExecutable), or raise InvocationError.

    In order: a command factory is itself; a command (an ICmdLineApp, already
    built) is returned as is by the factory; an adapter to
    ICmdLineAppFactory registered in the registry seen from ``context``
    (gateways register them for IWSGIApplication and IRerunnableCGI); a
    zero-argument callable becomes a CallableCommand.
    """
    if isCommandFactory(ob):
        return ob
    if ICmdLineApp.providedBy(ob):
        return lambda *args, **kw: ob
    adapted = binding.getRegistry(context).queryAdapter(ob, ICmdLineAppFactory)
    if adapted is not None:
        return adapted
    if callable(ob) and not IWSGIApplication.providedBy(ob) and _takesNoArguments(ob):
        return lambda *args, **kw: CallableCommand(ob)
    kind = ("a WSGI/CGI application with no gateway registered for it"
            if IWSGIApplication.providedBy(ob) or IRerunnableCGI.providedBy(ob) else repr(ob))
    raise InvocationError(
        f"{ob!r} is not executable: expected a command, a command factory or a zero-argument"
        f" callable, got {kind}; for a WSGI app use 'peak CGI pkg.mod:app'")


def _takesNoArguments(func):
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in sig.parameters.values())
