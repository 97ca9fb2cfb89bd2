"""EventDriven: a command that builds its components, then runs the main loop."""

from peak_lite import binding
from peak_lite.binding import Make
from peak_lite.config import lookupProperty
from peak_lite.running.abstract import AbstractCommand
from peak_lite.running.interfaces import IMainLoop, InvocationError
from peak_lite.running.mainloop import MainLoop
from peak_lite.running.options import Option
from peak_lite.util.imports import importObject

__all__ = ['EventDriven']


def _property(name):
    def default(command):
        return lookupProperty(command, name, default=0)
    return default


def _seconds(text):
    value = float(text)
    if value < 0:
        raise ValueError("must be >= 0")
    return value


class EventDriven(AbstractCommand):
    """Build the configured components, then run the main loop until it stops"""

    usage = """
Usage: peak EventDriven [options]

Builds the components named by the property 'peak.running.components' (a list
of factories or import strings), each under this command and assembled at
once, then runs the main loop.  Its exit status is what the loop returns.
Timings default to the properties peak.running.stopAfter, .idleTimeout and
.runAtLeast (seconds; 0 means off).  As an '[peak.running] app =' in a runIni
file, subclass it and add bindings with uponAssembly=True instead.
"""

    stopAfter = Option('--stop-after', type=_seconds, metavar='SECONDS',
                       default=_property('peak.running.stopAfter'),
                       help="stop after this many seconds")
    idleTimeout = Option('--idle-timeout', type=_seconds, metavar='SECONDS',
                         default=_property('peak.running.idleTimeout'),
                         help="stop after this long without activity")
    runAtLeast = Option('--run-at-least', type=_seconds, metavar='SECONDS',
                        default=_property('peak.running.runAtLeast'),
                        help="never stop for idleness before this many seconds")

    mainLoop = Make(lambda self: MainLoop(self), offerAs=[IMainLoop], suggestParent=False)
    components = Make(lambda self: self._makeComponents(), uponAssembly=True,
                      suggestParent=False)

    def _makeComponents(self):
        specs = lookupProperty(self, 'peak.running.components', default=())
        if isinstance(specs, str):
            specs = [specs]
        made = []
        for i, spec in enumerate(specs):
            made.append(binding.callRecipe(importObject(spec), self, f"component{i}"))
            binding.suggestParentComponent(self, f"component{i}", made[-1])
        return made

    def _run(self):
        if self.args:
            raise InvocationError(
                f"{self.commandName}: unexpected argument {self.args[0]!r}; EventDriven takes"
                f" options only (see '{self.commandName} --help')")
        return self.mainLoop.run(self.stopAfter, self.idleTimeout, self.runAtLeast)
