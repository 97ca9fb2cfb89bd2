"""Checking a built application against its configuration, before it serves.

``checkTree(subject)`` resolves every property that the components reachable
from ``subject`` obtain with ``binding.Obtain(PropertyName(...))`` and no
default; ``checkIniValues(area, path)`` evaluates every value that ``path``
defines.  A miss or a failure raises ConfigError, one line, with a "did you
mean" where a near name exists and the .ini files that were searched.
"""

import difflib

from peak_lite import binding
from peak_lite.binding import NOT_FOUND, NOT_GIVEN, Obtain, PropertyName
from peak_lite.binding.attributes import bindingPath
from peak_lite.config.iniparser import PROPERTY_SECTION, parseIni
from peak_lite.config.interfaces import ConfigError, PropertyNotFound

__all__ = ['checkTree', 'checkIniValues', 'componentsOf']

_MAX_DEPTH = 6      # how far to follow plain objects (a gateway, a middleware) to components


def componentsOf(subject):
    """The components reachable from ``subject`` and their ancestors, each once.

    Components are followed through their instance attributes (computed
    bindings, children); plain objects such as a gateway command or a WSGI
    middleware through their attributes too, a few levels deep, and bound
    methods to their instance.
    """
    found, seen = [], set()
    todo = [(subject, 0)]
    while todo:
        ob, depth = todo.pop()
        ob = getattr(ob, '__self__', ob)        # a bound method: its instance
        if id(ob) in seen or depth > _MAX_DEPTH:
            continue
        seen.add(id(ob))
        isComponent = isinstance(ob, binding.Component)
        if isComponent:
            found.append(ob)
            parent = binding.getParentComponent(ob)
            if parent is not None:
                todo.append((parent, depth))
        attrs = getattr(ob, '__dict__', None)
        if not isinstance(attrs, dict) or isinstance(ob, type):
            continue
        for name, value in attrs.items():
            if name.startswith('_') or isinstance(value, (str, bytes, int, float)):
                continue
            todo.append((value, 0 if isinstance(value, binding.Component) else depth + 1))
    return found


def _obtainedProperties(component):
    for klass in type(component).__mro__:
        for name, value in vars(klass).items():
            if isinstance(value, Obtain) and isinstance(value.key, PropertyName) \
                    and value.default is NOT_GIVEN and name not in component.__dict__:
                yield name, value.key


def _areas(component):
    return [ob for ob in binding.iterParents(component) if hasattr(ob, 'definedProperties')]


def _missing(component, attr, key):
    areas = _areas(component)
    defined = sorted({p for area in areas for p in area.definedProperties()
                      if not p.isWildcard()})
    files = []
    for area in reversed(areas):
        files.extend(f for f in area.loadedFiles() if f not in files)
    close = difflib.get_close_matches(key, defined, n=1, cutoff=0.7)
    hint = f"did you mean {str(close[0])!r}?" if close else "define it in one of them"
    return PropertyNotFound(
        f"property {str(key)!r}, obtained by {bindingPath(component, attr)}"
        f" ({type(component).__name__}.{attr}), is not defined; {hint} (searched:"
        f" {', '.join(files) or 'no .ini file'})", key)


def checkTree(subject):
    """Resolve every property the components reachable from ``subject`` obtain.

    Only ``Obtain`` bindings of a PropertyName without a default, not yet
    computed, are checked.  The property is looked up (its area caches the
    value, as any lookup would); the binding itself is left uncomputed.  Raises PropertyNotFound (a ConfigError) for a
    property that no area defines, or the ConfigError of a value that fails
    to evaluate.
    """
    for component in componentsOf(subject):
        for attr, key in _obtainedProperties(component):
            if binding.lookupComponent(component, key, NOT_FOUND) is NOT_FOUND:
                raise _missing(component, attr, key)


def checkIniValues(area, path):
    """Evaluate every property value, service and factory expression ``path`` defines.

    ``area`` is the service area ``path`` was loaded into; expressions are
    evaluated there, with ``targetObj`` the area, and not cached.  Wildcard
    rules are evaluated with an empty ``ruleSuffix``.  Raises the
    ConfigValueError (naming file, line, section and key) of the first
    value that fails.
    """
    rules = area._rules
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read configuration file: {e}", path) from e
    for entry in parseIni(text, path):
        if entry.kind in (PROPERTY_SECTION, 'Named Services', 'Component Factories'):
            extra = {}
            if entry.kind == PROPERTY_SECTION:
                name = PropertyName(entry.name)
                extra = dict(propertyName=name, ruleSuffix='')
            rules.evaluate(entry, area, **extra)
