"""Commands for the tests of a stop that reaches a child before its main loop runs."""

import os
import time

from peak_lite.running.mainloop import MainLoop

WINDOW = 30.0       # the longest a child waits for the test to let it go on


def _note(line):
    with open(os.environ['STARTUP_LOG'], 'a') as f:
        f.write(line + '\n')


def slowStart():
    """A command that reaches its main loop only once the test lets it.

    It notes ``waiting PID``, waits for ``$STARTUP_LOG.go`` (as a child of a
    loaded machine may take a while between its fork and its main loop), then
    runs a MainLoop with the default handler and notes ``stopped PID``.
    """
    _note(f"waiting {os.getpid()}")
    go = os.environ['STARTUP_LOG'] + '.go'
    deadline = time.monotonic() + WINDOW
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.01)
    code = MainLoop().run()
    _note(f"stopped {os.getpid()}")
    return code
