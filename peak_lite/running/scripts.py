"""Console scripts: ``peak`` and ``invoke``."""

import os
import sys


def invoke(argv=None):
    """``invoke "peak procman" file args...``: split the first argument on spaces and exec.

    For ``#!/path/to/venv/bin/invoke peak procman`` lines on systems whose
    ``env`` lacks ``-S``: the kernel passes everything after the interpreter
    as one argument.  A bare command name is looked for first beside the
    ``invoke`` script that runs (so that venv's ``peak`` runs, whatever PATH
    holds: cron's and systemd's hold no virtualenv), then on PATH.
    """
    if argv is None:
        argv, here = sys.argv[1:], os.path.dirname(os.path.abspath(sys.argv[0]))
    else:
        argv, here = list(argv), None
    if not argv or not argv[0].split():
        sys.stderr.write("usage: invoke 'COMMAND [WORDS...]' [ARGS...]"
                         " -- runs COMMAND with WORDS, then ARGS\n")
        return 2
    words = argv[0].split() + argv[1:]
    program = words[0]
    if here is not None and os.sep not in program:
        beside = os.path.join(here, program)
        if os.path.isfile(beside) and os.access(beside, os.X_OK):
            program = beside
    try:
        os.execvp(program, words)
    except OSError as e:
        sys.stderr.write(f"invoke: cannot run {words[0]!r}: {e.strerror}\n")
        return 127


def peak(argv=None):
    """The ``peak`` command: run a shortcut, an ``import:`` spec or a ``pkg.mod:obj`` spec."""
    # Imported here, not at the top: ``invoke`` only execs, and need not load the framework.
    from peak_lite.running.commands import main
    return main(sys.argv if argv is None else argv)
