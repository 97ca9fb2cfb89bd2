"""Console scripts: ``peak`` and ``invoke``."""

import os
import sys


def invoke(argv=None):
    """``invoke "peak procman" file args...``: split the first argument on spaces and exec.

    For ``#!invoke peak procman`` lines on systems whose ``env`` lacks ``-S``:
    the kernel passes everything after the interpreter as one argument.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or not argv[0].split():
        sys.stderr.write("usage: invoke 'COMMAND [WORDS...]' [ARGS...]"
                         " -- runs COMMAND with WORDS, then ARGS\n")
        return 2
    words = argv[0].split() + argv[1:]
    try:
        os.execvp(words[0], words)
    except OSError as e:
        sys.stderr.write(f"invoke: cannot run {words[0]!r}: {e.strerror}\n")
        return 127


def peak(argv=None):
    """The ``peak`` command: run a shortcut, an ``import:`` spec or a ``pkg.mod:obj`` spec."""
    from peak_lite.running.commands import main
    return main(sys.argv if argv is None else argv)
