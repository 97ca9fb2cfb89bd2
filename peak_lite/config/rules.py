"""A service area's rules: properties, component factories, named services, aliases.

Evaluation is lazy and cached per area.  A failed evaluation is not cached,
so a later lookup tries again.
"""

import builtins
import importlib

from peak_lite import binding
from peak_lite.binding import NOT_FOUND, PropertyName, callRecipe, suggestParentComponent
from peak_lite.config.interfaces import ConfigValueError
from peak_lite.util.imports import importString

__all__ = ['RuleSet', 'LazyModule']


class LazyModule:
    """A module imported on first attribute access (``[Import on Demand]``)."""

    __slots__ = ('_name', '_module')

    def __init__(self, name):
        self._name = name
        self._module = None

    def __getattr__(self, attr):
        if attr.startswith('__') and attr.endswith('__'):
            raise AttributeError(attr)
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self):
        return f"<LazyModule {self._name!r}>"


class RuleSet:
    """The rules one service area holds, and the values computed from them."""

    def __init__(self, area):
        self.area = area
        self.properties = {}     # PropertyName -> IniEntry
        self.services = {}       # PropertyName -> IniEntry
        self.factories = {}      # interface -> IniEntry
        self.aliases = {}        # name -> LazyModule
        self.files = []          # the files (and <string> texts) loaded, in order
        self._values = {}        # PropertyName or interface -> value

    # -- defining --------------------------------------------------------------

    def defineProperty(self, entry):
        name = PropertyName(entry.name)
        self._invalidate(name)
        self.services.pop(name, None)
        self.properties[name] = entry

    def defineService(self, entry):
        name = PropertyName(entry.name)
        self._invalidate(name)
        self.properties.pop(name, None)
        self.services[name] = entry

    def defineFactory(self, iface, entry):
        self._values.pop(iface, None)
        self.factories[iface] = entry

    def defineAlias(self, name, moduleName):
        self.aliases[name] = LazyModule(moduleName)

    def _invalidate(self, name):
        # A new rule may shadow values already computed from older rules.
        if name.isWildcard():
            prefix = name[:-1]
            for key in [k for k in self._values if isinstance(k, str) and k.startswith(prefix)]:
                del self._values[key]
        else:
            self._values.pop(name, None)

    # -- answering ---------------------------------------------------------------

    def lookup(self, key, targetObj):
        """The value for ``key`` (a PropertyName or an interface) here, or NOT_FOUND."""
        try:
            return self._values[key]
        except KeyError:
            pass
        except TypeError:       # an unhashable key can have no rule
            return NOT_FOUND
        if isinstance(key, PropertyName):
            value = self._lookupProperty(key, targetObj)
        else:
            entry = self.factories.get(key)
            if entry is None:
                return NOT_FOUND
            value = self._instantiate(entry, key, self.evaluate(entry, targetObj))
        if value is not NOT_FOUND:
            value = self._values.setdefault(key, value)
        return value

    def _lookupProperty(self, name, targetObj):
        entry = self.services.get(name)
        if entry is not None:
            return self._instantiate(entry, name, self.evaluate(entry, targetObj))
        for pattern in name.matchPatterns():
            entry = self.properties.get(pattern)
            if entry is not None:
                suffix = name[len(pattern) - 1:] if pattern.isWildcard() else ''
                return self.evaluate(entry, targetObj, propertyName=name, ruleSuffix=suffix)
        return NOT_FOUND

    def _instantiate(self, entry, key, factory):
        try:
            if isinstance(factory, str):
                factory = importString(factory)
            if not callable(factory):
                raise TypeError(f"{factory!r} is not callable")
            name = key if isinstance(key, str) else key.__name__
            value = callRecipe(factory, self.area, name)
        except Exception as e:
            raise ConfigValueError(
                f"making the service from {entry.source!r} failed: {type(e).__name__}: {e}",
                entry.filename, entry.lineno, entry.section, entry.key) from e
        suggestParentComponent(self.area, name, value)
        return value

    def evaluate(self, entry, targetObj, **extra):
        """Evaluate ``entry``'s expression; errors become ConfigValueError naming file:line."""
        ns = self.namespace(targetObj)
        ns.update(extra)
        try:
            return eval(entry.code, ns)
        except Exception as e:
            hint = ''
            if isinstance(e, NameError) and getattr(e, 'name', None) and \
                    entry.source.strip().startswith(e.name):
                # An unquoted word: 'greeting = Hello' where "Hello" was meant.
                hint = (f"; did you mean {entry.source.strip()!r} as a string? values are"
                        f" Python expressions, so quote text")
            raise ConfigValueError(
                f"evaluating {entry.source!r} raised {type(e).__name__}: {e}{hint}",
                entry.filename, entry.lineno, entry.section, entry.key) from e

    def namespace(self, targetObj):
        # This module's own package: it is still being imported when this module loads.
        from peak_lite import config
        ns = {
            '__builtins__': builtins,
            'targetObj': targetObj,
            'importString': importString,
            'config': config,
            'binding': binding,
            'PropertyName': PropertyName,
            'lookupComponent': binding.lookupComponent,
            'lookupProperty': config.lookupProperty,
            'NOT_GIVEN': binding.NOT_GIVEN,
        }
        # Aliases from ancestor areas first, so nearer ones override them.
        chain = []
        for ob in binding.iterParents(self.area):
            rules = getattr(ob, '_rules', None)
            if isinstance(rules, RuleSet):
                chain.append(rules.aliases)
        for aliases in reversed(chain):
            ns.update(aliases)
        return ns
