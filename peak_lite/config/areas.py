"""Service areas, configuration roots and property lookup."""

import os

from zope.interface import implementer

from peak_lite import binding
from peak_lite.binding import NOT_FOUND, NOT_GIVEN, PropertyName
from peak_lite.binding.components import makeRegistry
from peak_lite.config import loader
from peak_lite.config.interfaces import IServiceArea, PropertyNotFound
from peak_lite.config.rules import RuleSet

__all__ = ['ServiceArea', 'makeRoot', 'lookupProperty', 'BUILTIN_INI', 'CONFIG_ENV']

BUILTIN_INI = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'peak_lite.ini')
CONFIG_ENV = 'PEAK_CONFIG'


@implementer(IServiceArea)
class ServiceArea(binding.Component):
    """A component owning a registry and configuration rules; see IServiceArea.

    ``ServiceArea(parentComponent, componentName=None, iniFiles=(), **attrs)``
    loads ``iniFiles`` in order, so later files override earlier ones.
    """

    def __init__(self, parentComponent=NOT_GIVEN, componentName=None, iniFiles=(), **attrs):
        self._rules = RuleSet(self)
        super().__init__(parentComponent, componentName, **attrs)
        if isinstance(iniFiles, (str, os.PathLike)):
            iniFiles = (iniFiles,)
        for path in iniFiles:
            self.loadIniFile(path)

    @property
    def registry(self):
        return self._ownRegistry()

    def _ownRegistry(self):
        if self._registry is None:
            self._registry = makeRegistry(self)
        return self._registry

    def _getConfigData(self, key, targetObj):
        value = super()._getConfigData(key, targetObj)
        if value is NOT_FOUND:
            value = self._rules.lookup(key, targetObj)
        return value

    def loadIniFile(self, path):
        """See IServiceArea."""
        loader.loadIniFile(self, self._rules, path)

    def loadIniText(self, text, filename='<string>'):
        """See IServiceArea."""
        loader.loadIniText(self, self._rules, text, filename)

    def definedProperties(self):
        """See IServiceArea."""
        return sorted(set(self._rules.properties) | set(self._rules.services))

    def loadedFiles(self):
        """See IServiceArea."""
        return list(self._rules.files)


def makeRoot(iniFiles=(), environ=None, **attrs):
    """Make a configuration root: a ServiceArea with parent None.

    It loads peak_lite's built-in ``peak_lite.ini``, then the files named in
    ``environ['PEAK_CONFIG']`` (``os.pathsep``-separated; ``environ``
    defaults to ``os.environ``), then ``iniFiles``.
    """
    if environ is None:
        environ = os.environ
    if isinstance(iniFiles, (str, os.PathLike)):
        iniFiles = (iniFiles,)
    fromEnv = [p for p in environ.get(CONFIG_ENV, '').split(os.pathsep) if p.strip()]
    return ServiceArea(None, iniFiles=[BUILTIN_INI, *fromEnv, *iniFiles], **attrs)


def lookupProperty(component, name, default=NOT_GIVEN):
    """The value of property ``name`` as seen from ``component``.

    Raises PropertyNotFound (a ConfigError and a binding.ComponentLookupError)
    naming the property and the components tried, unless ``default`` is given.
    """
    try:
        return binding.lookupComponent(component, PropertyName(name), default)
    except PropertyNotFound:
        raise
    except binding.ComponentLookupError as e:
        raise PropertyNotFound(str(e), e.key, e.tried) from None
