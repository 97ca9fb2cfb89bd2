"""The public import path of the command layer: ``from peak_lite.running import commands``.

Users, entry points (``peak_lite.running.commands:IniInterpreter``) and
``importString`` names in .ini files reach the command layer through this
module; the code lives in the modules imported below, which code inside the
package imports directly.
"""

from peak_lite.running.abstract import (  # noqa: F401
    AbstractCommand, AbstractInterpreter, CallableCommand, commandFactoryFor, isCommandFactory)
from peak_lite.running.assembly import buildCommitted, describeFailure  # noqa: F401
from peak_lite.running.bootstrap import (  # noqa: F401
    Alias, Bootstrap, Help, main, resolveCommand, shebangWords, shortcutEntryPoints)
from peak_lite.running.eventdriven import EventDriven  # noqa: F401
from peak_lite.running.interfaces import InvocationError, LoadError, RunningError  # noqa: F401
from peak_lite.running.mainloop import MainLoop, StopOnStandardSignals  # noqa: F401
from peak_lite.running.options import Flag, Option  # noqa: F401
from peak_lite.running.runini import IniInterpreter  # noqa: F401
from peak_lite.running.trampoline import runMain  # noqa: F401

__all__ = [
    'AbstractCommand', 'AbstractInterpreter', 'Bootstrap', 'Alias', 'Help', 'EventDriven',
    'IniInterpreter', 'runMain', 'main', 'InvocationError', 'LoadError', 'RunningError',
    'Option', 'Flag', 'CallableCommand', 'commandFactoryFor', 'isCommandFactory',
    'resolveCommand', 'shebangWords', 'shortcutEntryPoints', 'MainLoop',
    'StopOnStandardSignals', 'buildCommitted', 'describeFailure',
]
