"""lookupComponent: interfaces and property names up the parent chain, paths, URLs."""

from zope.component import getGlobalSiteManager
from zope.interface.interfaces import IInterface

from peak_lite.binding.components import (
    getComponentPath, getParentComponent, getRootComponent, iterParents)
from peak_lite.binding.interfaces import ComponentLookupError, InvalidKey
from peak_lite.binding.names import NOT_FOUND, NOT_GIVEN, PropertyName, splitURL
from peak_lite.util.imports import importString

__all__ = ['lookupComponent', 'queryComponent', 'importURL', 'SCHEMES_PREFIX']

SCHEMES_PREFIX = 'peak.naming.schemes.'


def lookupComponent(component, key, default=NOT_GIVEN):
    """Find what ``key`` names, as seen from ``component``.

    - an interface or a PropertyName: at each component from ``component`` up
      to the top, its ``_getConfigData`` (offerAs bindings, then its own
      registry and configuration); then, for an interface, the global site
      manager;
    - a URL string (``scheme:rest``, the scheme without dots): the factory
      named by property ``peak.naming.schemes.<scheme>`` (a callable or an
      import string) is called as ``factory(component, url)``; ``import:`` is
      built in;
    - any other string is a path: ``.`` is the component, ``..`` its parent,
      a leading ``/`` starts at the root, a bare first name is acquired from
      the component or the nearest ancestor that has it, and each further
      ``/name`` is an attribute of the previous result.

    Without ``default`` a failure raises ComponentLookupError naming the key
    and the components tried; with it, ``default`` is returned instead.
    """
    if IInterface.providedBy(key) or isinstance(key, PropertyName):
        return _lookupKey(component, key, default)
    if not isinstance(key, str):
        raise InvalidKey(
            f"cannot look up {key!r}: a key is an interface, a PropertyName, a path or a URL")
    url = splitURL(key)
    if url is not None:
        return _lookupURL(component, url[0], key, default)
    return _lookupPath(component, key, default)


def queryComponent(component, key, default=None):
    """``lookupComponent`` that returns ``default`` (None) instead of raising."""
    return lookupComponent(component, key, default)


def _lookupKey(component, key, default):
    if isinstance(key, PropertyName) and key.isWildcard():
        raise InvalidKey(f"cannot look up the wildcard {key!r}: name one property")
    tried = []
    for ob in iterParents(component):
        tried.append(getComponentPath(ob))
        get = getattr(ob, '_getConfigData', None)
        if get is None:
            continue
        value = get(key, component)
        if value is not NOT_FOUND:
            return value
    if IInterface.providedBy(key):
        value = getGlobalSiteManager().queryUtility(key, default=NOT_FOUND)
        if value is not NOT_FOUND:
            return value
        tried.append('the global registry')
    if default is not NOT_GIVEN:
        return default
    what = key.__identifier__ if IInterface.providedBy(key) else f"property {str(key)!r}"
    remedy = ("offer it with offerAs=[...] on an ancestor or register a utility"
              if IInterface.providedBy(key) else
              "offer it with offerAs=[...] on an ancestor or define it in a configuration file")
    raise ComponentLookupError(
        f"no component found for {what} from {getComponentPath(component)}; "
        f"tried {', '.join(tried)}: {remedy}", key, tried)


def _lookupURL(component, scheme, url, default):
    prop = PropertyName(SCHEMES_PREFIX + scheme)
    factory = _lookupKey(component, prop, None)
    if factory is None and scheme == 'import':
        factory = importURL
    if factory is None:
        if default is not NOT_GIVEN:
            return default
        raise ComponentLookupError(
            f"unknown URL scheme {scheme!r} in {url!r} (looked up from "
            f"{getComponentPath(component)}): declare it as property {prop} in a "
            f"configuration file; for an import spec write 'import:pkg.mod:obj'",
            url, [getComponentPath(ob) for ob in iterParents(component)])
    if isinstance(factory, str):
        factory = importString(factory)
    try:
        return factory(component, url)
    except ComponentLookupError:
        if default is not NOT_GIVEN:
            return default
        raise


def importURL(parentComponent, url):
    """The built-in ``import:`` scheme: ``import:pkg.mod:obj`` imports ``pkg.mod:obj``."""
    spec = url.partition(':')[2]
    return importString(spec)


def _lookupPath(component, path, default):
    if not path:
        raise InvalidKey("cannot look up an empty path: use '.' for the component itself")
    if ':' in path:
        raise InvalidKey(
            f"cannot look up {path!r}: it is neither a path (paths contain no ':') nor a "
            f"URL (a scheme has no '.'); for an import spec write 'import:{path}'")
    tried = []
    if path.startswith('/'):
        ob = getRootComponent(component)
        parts = path.split('/')[1:]
    else:
        parts = path.split('/')
        first = parts.pop(0)
        ob = _acquire(component, first, tried)
        if ob is NOT_FOUND:
            return _pathFailure(component, path, first, tried, default)
    for part in parts:
        if part in ('', '.'):
            continue
        if part == '..':
            ob = getParentComponent(ob)
            continue
        nxt = getattr(ob, part, NOT_FOUND)
        if nxt is NOT_FOUND:
            tried.append(getComponentPath(ob))
            return _pathFailure(component, path, part, tried, default)
        ob = nxt
    return ob


def _acquire(component, name, tried):
    if name == '.':
        return component
    if name == '..':
        return getParentComponent(component)
    for ob in iterParents(component):
        # Skip an attribute that is being computed right now, so that
        # ``name = Obtain('name')`` acquires the name from an ancestor.
        if name in getattr(ob, '__dict__', {}).get('_bindingsComputing', ()):
            tried.append(getComponentPath(ob))
            continue
        value = getattr(ob, name, NOT_FOUND)
        if value is not NOT_FOUND:
            return value
        tried.append(getComponentPath(ob))
    return NOT_FOUND


def _pathFailure(component, path, missing, tried, default):
    if default is not NOT_GIVEN:
        return default
    raise ComponentLookupError(
        f"cannot find path {path!r} from {getComponentPath(component)}: no attribute "
        f"{missing!r} on {', '.join(tried)}", path, tried)
