"""runIni: load an .ini file and return the app it names, built."""

import os

from peak_lite.binding import NOT_FOUND
from peak_lite.config import ServiceArea, lookupProperty
from peak_lite.running.abstract import AbstractInterpreter
from peak_lite.running.interfaces import InvocationError

__all__ = ['IniInterpreter', 'APP_PROPERTY']

APP_PROPERTY = 'peak.running.app'


class IniInterpreter(AbstractInterpreter):
    """Run the app named by '[peak.running] app = ...' in an .ini file"""

    usage = """
Usage: peak runIni CONFIG_FILE [arguments...]

Loads CONFIG_FILE into a new service area and runs the command named by its
'[peak.running] app = ...' setting, giving it the arguments.  A config file
starting with '#!/usr/bin/env -S peak runIni' can be made executable and run
directly.
"""

    def interpret(self, filename):
        if not os.path.isfile(filename):
            what = "is a directory" if os.path.isdir(filename) else "does not exist"
            raise InvocationError(
                f"{self.commandName}: config file {filename!r} {what}; give the path of an"
                f" .ini file")
        area = ServiceArea(self.getParentComponent(), filename, iniFiles=[filename])
        app = lookupProperty(area, APP_PROPERTY, default=NOT_FOUND)
        if app is NOT_FOUND:
            raise InvocationError(
                f"{filename}: no '[peak.running] app = ...' setting; add one naming the"
                f" command to run, for example app = importString('mypkg.cmds:Main')")
        return self.getSubcommand(app, parentComponent=area)
