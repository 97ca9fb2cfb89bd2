"""Configuration: .ini files, properties, service areas and configuration roots."""

from peak_lite.config.areas import (  # noqa: F401
    BUILTIN_INI, CONFIG_ENV, ServiceArea, lookupProperty, makeRoot)
from peak_lite.config.check import checkIniValues, checkTree, componentsOf  # noqa: F401
from peak_lite.config.iniparser import IniEntry, parseIni  # noqa: F401
from peak_lite.config.interfaces import (  # noqa: F401
    ConfigError, ConfigSyntaxError, ConfigValueError, IServiceArea, PropertyNotFound,
    UnknownSection)
from peak_lite.config.rules import LazyModule, RuleSet  # noqa: F401
