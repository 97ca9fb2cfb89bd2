"""Component: parents, names, service registries and assembly events."""

from zope.component import getGlobalSiteManager
from zope.interface import implementer
from zope.interface.interfaces import IInterface
from zope.interface.registry import Components

from peak_lite.binding.interfaces import (
    IAttributeBinding, IComponent, IComponentFactory, ParentAlreadySet)
from peak_lite.binding.names import NOT_FOUND, NOT_GIVEN

__all__ = [
    'Component', 'getParentComponent', 'getComponentName', 'getRootComponent',
    'getComponentPath', 'getRegistry', 'iterParents', 'suggestParentComponent',
    'noteFailure', 'failureLocation',
]

_PENDING, _ASSEMBLING, _ASSEMBLED = 'pending', 'assembling', 'assembled'


@implementer(IComponentFactory)
class ComponentClass(type):
    """Metaclass of Component: assembles an instance once its ``__init__`` is done.

    Assembly runs after the whole ``__init__`` chain, so a subclass that sets
    attributes after calling ``super().__init__`` sees them in its hook.
    It also collects, per class, the bindings offered with ``offerAs`` and the
    ones computed ``uponAssembly``.
    """

    def __init__(cls, name, bases, ns):
        super().__init__(name, bases, ns)
        merged = {}
        for klass in reversed(cls.__mro__):
            merged.update(vars(klass))
        bindings = {n: v for n, v in merged.items() if IAttributeBinding.providedBy(v)}
        cls._uponAssemblyNames = tuple(n for n, b in bindings.items() if b.uponAssembly)
        offers = {}
        for attr, b in bindings.items():
            for key in b.offerAs:
                offers[key] = attr
        # An offer of ISub also answers lookups of its bases, unless the same
        # class offers the base itself.
        for key, attr in list(offers.items()):
            if IInterface.providedBy(key):
                for base in key.__iro__[1:]:
                    if base.__name__ != 'Interface':
                        offers.setdefault(base, attr)
        cls._offerMap = offers

    def __call__(cls, *args, **kw):
        ob = super().__call__(*args, **kw)
        ob._constructing = False
        ob._assembleIfReady()
        return ob


@implementer(IComponent)
class Component(metaclass=ComponentClass):
    """A component; see IComponent.

    ``Component(parentComponent=NOT_GIVEN, componentName=None, **attrs)``:
    keyword arguments set attributes the class defines (bindings or plain
    class attributes); any other name is a TypeError.
    """

    def __init__(self, parentComponent=NOT_GIVEN, componentName=None, **attrs):
        self._constructing = True
        self._parentComponent = NOT_GIVEN
        self._componentName = componentName
        self._parentSuggested = False
        self._assemblyState = _PENDING
        self._waitingChildren = []
        self._registry = None
        klass = type(self)
        for name, value in attrs.items():
            if not hasattr(klass, name):
                raise TypeError(
                    f"{klass.__name__}() got an unexpected keyword argument {name!r}: "
                    f"{klass.__name__} defines no attribute of that name")
            setattr(self, name, value)
        if parentComponent is not NOT_GIVEN:
            self.setParentComponent(parentComponent, componentName)

    def __repr__(self):
        return f"<{type(self).__name__} at {getComponentPath(self)}>"

    # -- parent and name ---------------------------------------------------

    def getParentComponent(self):
        return self._parentComponent

    def getComponentName(self):
        return self._componentName

    def setParentComponent(self, parentComponent, componentName=None, suggest=False):
        """See IComponent."""
        current = self._parentComponent
        if current is not NOT_GIVEN:
            if suggest:
                return
            if current is parentComponent:
                if componentName is not None:
                    self._componentName = componentName
                self._parentSuggested = False
                return
            if not self._parentSuggested:
                raise ParentAlreadySet(
                    f"{type(self).__name__} at {getComponentPath(self)} already has parent "
                    f"{current!r}; cannot set it to {parentComponent!r}: create a new "
                    f"component instead of moving this one")
            if isinstance(current, Component):
                current._forgetChild(self)
        self._parentComponent = parentComponent
        self._parentSuggested = bool(suggest)
        if componentName is not None:
            self._componentName = componentName
        self._assembleIfReady()

    # -- assembly --------------------------------------------------------------

    def isAssembled(self):
        return self._assemblyState == _ASSEMBLED

    def assemble(self):
        self._assembleIfReady()
        return self.isAssembled()

    def uponAssembly(self):
        """See IComponent.uponAssembly; the default does nothing."""

    def _assembleIfReady(self):
        if self._constructing or self._assemblyState != _PENDING:
            return
        parent = self._parentComponent
        if parent is None:
            self._assemble()
        elif isinstance(parent, Component):
            if parent._assemblyState == _PENDING:
                if self not in parent._waitingChildren:
                    parent._waitingChildren.append(self)
            else:
                self._assemble()

    def _forgetChild(self, child):
        try:
            self._waitingChildren.remove(child)
        except ValueError:
            pass

    def _assemble(self):
        if self._assemblyState != _PENDING:
            return
        self._assemblyState = _ASSEMBLING
        try:
            while self._waitingChildren:
                child = self._waitingChildren[0]
                child._assemble()
                self._forgetChild(child)
            for name in type(self)._uponAssemblyNames:
                getattr(self, name)
            try:
                self.uponAssembly()
            except Exception as e:
                noteFailure(e, getComponentPath(self))
                raise
        except BaseException:
            self._assemblyState = _PENDING
            raise
        self._assemblyState = _ASSEMBLED

    # -- lookups -----------------------------------------------------------------

    def _getConfigData(self, key, targetObj):
        """See IComponent._getConfigData."""
        attr = type(self)._offerMap.get(key)
        if attr is not None:
            return getattr(self, attr)
        if IInterface.providedBy(key):
            registry = self._ownRegistry()
            if registry is not None:
                return queryLocalUtility(registry, key)
        return NOT_FOUND

    def _ownRegistry(self):
        """See IComponent._ownRegistry: roots own a registry."""
        if self._registry is None and self._parentComponent is None:
            self._registry = makeRegistry(self)
        return self._registry


_WHERE = '_peak_lite_failed_at'


def noteFailure(error, where):
    """Record on ``error`` the component path it was raised under, unless already noted.

    The first note is the innermost one: a binding computed by an assembly
    hook keeps its own path, not the hook's.  ``failureLocation`` reads it.
    """
    if getattr(error, _WHERE, None) is None:
        try:
            setattr(error, _WHERE, where)
        except (AttributeError, TypeError):
            pass        # an exception type without a __dict__: nothing to note on


def failureLocation(error):
    """Where ``error`` was raised, as noted by ``noteFailure`` (``/store.cache``), or None."""
    return getattr(error, _WHERE, None)


def makeRegistry(component):
    """A new registry for ``component``, chained to its nearest ancestor's."""
    parent = getParentComponent(component)
    base = getRegistry(parent) if parent is not None else getGlobalSiteManager()
    return Components(getComponentPath(component), bases=(base,))


def queryLocalUtility(registry, iface, name=''):
    """The utility registered for ``iface`` in ``registry`` itself (not its bases).

    An exact registration wins over one that provides an extension of
    ``iface``; NOT_FOUND if there is neither.
    """
    found = NOT_FOUND
    for reg in registry.registeredUtilities():
        if reg.name != name:
            continue
        if reg.provided is iface:
            return reg.component
        if found is NOT_FOUND and reg.provided.isOrExtends(iface):
            found = reg.component
    return found


def getParentComponent(component):
    """The parent of ``component``; None for a root or a non-component."""
    get = getattr(component, 'getParentComponent', None)
    parent = get() if get is not None else None
    return None if parent is NOT_GIVEN else parent


def getComponentName(component):
    get = getattr(component, 'getComponentName', None)
    return get() if get is not None else None


def iterParents(component):
    """Yield ``component``, its parent, and so on up to the top."""
    while component is not None:
        yield component
        component = getParentComponent(component)


def getRootComponent(component):
    """The topmost ancestor of ``component`` (itself if it has no parent)."""
    for component in iterParents(component):
        pass
    return component


def getComponentPath(component):
    """A readable path like ``/app/db``; unnamed components show as ``<Class>``.

    The path starts with ``/`` only if the top of the chain is a root (its
    parent is ``None``), not a component whose parent was never set.
    """
    names = []
    top = None
    for ob in iterParents(component):
        top = ob
        names.append(getComponentName(ob) or f"<{type(ob).__name__}>")
    isRoot = getattr(top, 'getParentComponent', lambda: NOT_GIVEN)() is None
    if isRoot:
        names.pop()
        return '/' + '/'.join(reversed(names))
    return '/'.join(reversed(names))


def getRegistry(component):
    """The registry of the nearest service area at or above ``component``.

    Falls back to the global site manager.  Register utilities and adapters
    here to make them visible to that area's descendants only.
    """
    for ob in iterParents(component):
        own = getattr(ob, '_ownRegistry', None)
        registry = own() if own is not None else None
        if registry is not None:
            return registry
    return getGlobalSiteManager()


def suggestParentComponent(parent, name, value):
    """Offer ``parent`` as the parent of ``value`` if it is a component without one."""
    setParent = getattr(value, 'setParentComponent', None)
    if setParent is not None and IComponent.providedBy(value):
        setParent(parent, name, suggest=True)
