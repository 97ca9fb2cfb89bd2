"""Contracts and exceptions of peak_lite.config (.ini files, properties, roots)."""

from zope.interface import Attribute

from peak_lite.binding.interfaces import ComponentLookupError, IComponent


class ConfigError(Exception):
    """Base class of every error raised by peak_lite.config.

    The message reads ``FILE:LINE: [section] key: what is wrong``; the parts
    that are known are also attributes (``filename``, ``lineno``,
    ``section``, ``key``, ``problem``).
    """

    def __init__(self, problem, filename=None, lineno=None, section=None, key=None):
        self.problem = problem
        self.filename = filename
        self.lineno = lineno
        self.section = section
        self.key = key
        super().__init__(self.format())

    def format(self):
        where = []
        if self.filename is not None:
            where.append(f"{self.filename}:{self.lineno}:" if self.lineno else f"{self.filename}:")
        if self.section is not None:
            where.append(f"[{self.section}]")
        if self.key is not None:
            where.append(f"{self.key}:")
        return ' '.join(where + [self.problem])


class ConfigSyntaxError(ConfigError):
    """A line of a configuration file cannot be parsed, or a value is not a Python expression."""


class UnknownSection(ConfigSyntaxError):
    """A section name contains spaces but is none of the special sections."""


class ConfigValueError(ConfigError):
    """A configuration value could not be evaluated or used."""


class PropertyNotFound(ConfigError, ComponentLookupError):
    """``lookupProperty`` found no rule for the property (and no default was given)."""

    def __init__(self, problem, key=None, tried=()):
        ConfigError.__init__(self, problem)
        self.key = key
        self.tried = list(tried)


class IServiceArea(IComponent):
    """A component that owns a registry and configuration rules.

    Its registry (``zope.interface.registry.Components``) chains to the
    nearest ancestor's registry and finally to the global site manager, so
    utilities and adapters registered in it are visible to the area and its
    descendants only.

    Property rules come from .ini files.  A value is a Python expression,
    compiled when the file is loaded and evaluated on first lookup, once per
    area: the result is cached in the area.  The component whose lookup
    caused the evaluation is ``targetObj`` in the expression's namespace.
    For a property ``a.b.c`` the area tries the rule ``a.b.c``, then the
    wildcards ``a.b.*``, ``a.*`` and ``*``; the first that exists answers, and
    only if none does is the parent consulted.
    """

    registry = Attribute("This area's zope.interface.registry.Components")

    def loadIniFile(path):
        """Load a .ini file into this area; later definitions override earlier ones.

        Raises ConfigError naming file:line for syntax errors, unknown sections,
        missing files and errors in ``[Load Settings From]`` or
        ``[Component Factories]`` keys.
        """

    def loadIniText(text, filename='<string>'):
        """Load .ini text as if read from ``filename``."""

    def definedProperties():
        """Return the sorted property names (and wildcard rules) defined here."""

    def loadedFiles():
        """Return the files loaded into this area, in order, included ones too."""
