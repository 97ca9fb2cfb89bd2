"""Commands and components used by the running tests (also run by real `peak` processes)."""

import asyncio
import os
import time

from peak_lite import binding
from peak_lite.binding import Make
from zope.interface import directlyProvides

from peak_lite.running.commands import AbstractCommand
from peak_lite.running.interfaces import ICmdLineAppFactory, IMainLoop
from peak_lite.running.options import Flag, Option


class Foo(AbstractCommand):
    """A sample command that records when it was assembled and run"""

    usage = "Usage: foo [--greeting TEXT] [args...]"
    greeting = Option('--greeting', default='hello', help="what to say")
    loud = Flag('--loud', help="shout")
    cache = Make(lambda self: self.events.append('cache built') or {'ready': True},
                 uponAssembly=True)

    def __init__(self, *args, **kw):
        self.events = []
        super().__init__(*args, **kw)

    def uponAssembly(self):
        self.events.append('assembled')

    def _run(self):
        self.events.append('ran')
        text = f"{self.greeting} {' '.join(self.args)}".strip()
        self.stdout.write((text.upper() if self.loud else text) + "\n")
        self.stdout.flush()
        return int(self.environ.get('FOO_EXIT', '0'))


def fooFromZConfig(section):
    """ZConfig datatype: a factory for Foo greeting with the configured text."""
    def factory(parentComponent, componentName=None, **kw):
        return Foo(parentComponent, componentName, greeting=section.greeting, **kw)
    directlyProvides(factory, ICmdLineAppFactory)
    return factory


def returnsFactory():
    """A zero-argument callable command (CallableCommand)."""
    return 5


fooAlias = None     # set by tests: Alias(command=['runIni', path])


class Marker(binding.Component):
    """A component that touches files named by the environment (process tests)."""

    mainLoop = binding.Obtain(IMainLoop)

    def uponAssembly(self):
        self.mainLoop.eventLoop.call_soon(self.started)

    def started(self):
        _touch('MARK_READY')


def _touch(var, text=''):
    path = os.environ.get(var)
    if path:
        with open(path + '.tmp', 'w') as f:
            f.write(text or str(os.getpid()))
        os.replace(path + '.tmp', path)


def _waitFile(var, timeout=30.0):
    """Poll for the file the test creates; give up (and fail the command) after ``timeout``."""
    path = os.environ[var]
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear within {timeout}s")
        time.sleep(0.01)


class LongCallback(binding.Component):
    """Runs one long synchronous callback that waits for MARK_GO, then touches MARK_DONE."""

    mainLoop = binding.Obtain(IMainLoop)

    def uponAssembly(self):
        self.mainLoop.eventLoop.call_soon(self.work)

    def work(self):
        _touch('MARK_READY')
        _waitFile('MARK_GO')
        _touch('MARK_DONE')


class LongTask(binding.Component):
    """An asyncio task that blocks until MARK_GO, awaits a while, then touches MARK_DONE."""

    mainLoop = binding.Obtain(IMainLoop)

    def uponAssembly(self):
        self.mainLoop.eventLoop.create_task(self.work())

    async def work(self):
        # The SIGHUP arrives during this first step, so this task is the one
        # "running" then; the rest of it, after the await, still runs.
        _touch('MARK_READY')
        _waitFile('MARK_GO')
        await asyncio.sleep(0.2)
        _touch('MARK_DONE')


class CustomHandler:
    """A signal handler: SIGUSR1 exits 42, SIGTERM is only recorded."""

    def __init__(self, mainLoop):
        self.mainLoop = mainLoop

    def SIGTERM(self, signum, frame):
        _touch('MARK_TERM')

    def SIGUSR1(self, signum, frame):
        self.mainLoop.exitWith(42)


