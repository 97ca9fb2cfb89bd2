"""runMain: build and run a command, follow the commands it returns, map errors to exit codes."""

import os
import sys
import traceback

from peak_lite.config import ConfigError, makeRoot
from peak_lite.running.abstract import isCommandFactory
from peak_lite.running.interfaces import (
    EXIT_FAILURE, EXIT_OK, EXIT_USAGE, ICmdLineApp, RunningError)
from peak_lite.util.interfaces import UtilError

__all__ = ['runMain', 'exitCodeFor', 'reportError', 'debugEnabled']

DEBUG_ENV = 'PEAK_DEBUG'


def debugEnabled(environ):
    return environ.get(DEBUG_ENV, '').strip() not in ('', '0', 'no', 'false')


def oneLine(message):
    """Collapse a possibly multi-line message into one line."""
    return '; '.join(part.strip() for part in str(message).splitlines() if part.strip())


def exitCodeFor(error):
    """The exit status for an exception that escaped a command."""
    if isinstance(error, RunningError):
        return error.exitCode
    if isinstance(error, ConfigError):
        return EXIT_USAGE
    return EXIT_FAILURE


def reportError(error, stderr, environ, prog='peak'):
    """Write one line naming ``error`` to ``stderr`` (and the traceback if PEAK_DEBUG)."""
    if isinstance(error, (RunningError, ConfigError, UtilError)):
        message = oneLine(error)
    else:
        message = oneLine(f"{type(error).__name__}: {error}")
    try:
        if debugEnabled(environ):
            traceback.print_exception(error, file=stderr)
        if not message.startswith((f"{prog}:", f"{prog} ")):
            message = f"{prog}: {message}"
        stderr.write(message + "\n")
        stderr.flush()
    except (OSError, ValueError):
        # stderr itself is gone (closed pipe, closed file): nothing better to do
        # than leave the exit status to tell the story.
        pass


def runMain(factory, argv=None, stdin=None, stdout=None, stderr=None, environ=None,
            makeRoot=makeRoot):
    """Run ``factory`` as the top command and return the exit status.

    Each round builds the command with ``factory(root, argv=argv, stdin=...,
    ...)`` in a fresh root from ``makeRoot(environ=environ)`` and runs it.  If
    ``run()`` returns a command factory, the next round builds that one in a
    fresh root (same argv and I/O); if it returns a built command (an
    ICmdLineApp), that is run next as is.  This is how a forked child leaves
    the parent's call stack: its main loop returns the child's command.  An
    int (or None, meaning 0) ends the trampoline.

    An exception that escapes is reported as one line on ``stderr`` (with the
    traceback when ``PEAK_DEBUG=1``) and mapped to a status by exitCodeFor:
    InvocationError and ConfigError 2, LoadError 3, anything else 1.
    """
    argv = list(sys.argv if argv is None else argv)
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    environ = os.environ if environ is None else environ
    prog = os.path.basename(argv[0]) if argv else 'peak'
    io = dict(argv=argv, stdin=stdin, stdout=stdout, stderr=stderr, environ=environ)
    try:
        command = factory(makeRoot(environ=environ), **io)
        while True:
            result = command.run()
            if isCommandFactory(result):
                command = result(makeRoot(environ=environ), **io)
            elif ICmdLineApp.providedBy(result):
                command = result
            else:
                return _statusOf(result, stderr, environ, prog)
    except SystemExit as e:
        if isinstance(e.code, str):     # sys.exit("message"), as Python itself does
            reportError(RunningError(e.code), stderr, environ, prog)
            return EXIT_FAILURE
        return _statusOf(e.code, stderr, environ, prog)
    except KeyboardInterrupt:
        reportError(RunningError("interrupted"), stderr, environ, prog)
        return 130
    except Exception as e:
        reportError(e, stderr, environ, prog)
        return exitCodeFor(e)


def _statusOf(result, stderr, environ, prog):
    if result is None:
        return EXIT_OK
    if isinstance(result, bool) or not isinstance(result, int):
        reportError(RunningError(f"the command returned {result!r}, not an exit status"),
                    stderr, environ, prog)
        return EXIT_FAILURE
    return result
