"""Attribute bindings: Make, Obtain, Require and Delegate (see IAttributeBinding)."""

import difflib
import inspect
import sys

from zope.interface import implementer
from zope.interface.interfaces import IInterface

from peak_lite.binding.components import (
    getComponentPath, getRegistry, noteFailure, suggestParentComponent)
from peak_lite.binding.interfaces import (
    AdaptationError, BindingError, CircularDefinition, ComponentLookupError, IAttributeBinding, IComponentFactory, RequirementNotMet)
from peak_lite.binding.lookup import lookupComponent
from peak_lite.binding.names import NOT_GIVEN, PropertyName
from peak_lite.util.imports import importString

__all__ = ['Attribute', 'Make', 'Obtain', 'Require', 'Delegate', 'callRecipe', 'adaptValue']


@implementer(IAttributeBinding)
class Attribute:
    """Base of the attribute bindings; see IAttributeBinding.

    Subclasses implement ``computeValue(ob)``.
    """

    attrName = None

    def __init__(self, offerAs=(), uponAssembly=False, suggestParent=True, adaptTo=None,
                 doc=None, **unknown):
        if unknown:
            raise BindingError(_unknownKeywords(self, unknown))
        self.offerAs = tuple(
            PropertyName(k) if isinstance(k, str) else k for k in offerAs)
        for key in self.offerAs:
            if not (isinstance(key, PropertyName) or IInterface.providedBy(key)):
                raise BindingError(
                    f"offerAs entries must be interfaces or property names, got {key!r}")
            if isinstance(key, PropertyName) and key.isWildcard():
                raise BindingError(f"offerAs cannot offer the wildcard {key!r}")
        self.uponAssembly = bool(uponAssembly)
        self.suggestParent = bool(suggestParent)
        if adaptTo is not None and not IInterface.providedBy(adaptTo):
            raise BindingError(f"adaptTo must be an interface, got {adaptTo!r}")
        self.adaptTo = adaptTo
        if doc is not None:
            self.__doc__ = doc

    def __set_name__(self, owner, name):
        self.attrName = name
        self.ownerName = owner.__name__

    def __get__(self, ob, typ=None):
        if ob is None:
            return self
        d = ob.__dict__
        name = self.attrName
        try:
            return d[name]
        except KeyError:
            pass
        computing = d.setdefault('_bindingsComputing', set())
        if name in computing:
            raise CircularDefinition(
                f"{self._where()} depends on itself (a cycle through {self!r}): "
                f"look the value up under another name or from the parent ('../{name}')")
        computing.add(name)
        try:
            value = self.computeValue(ob)
            if self.adaptTo is not None:
                value = adaptValue(value, self.adaptTo, ob, self._where())
        except Exception as e:
            noteFailure(e, bindingPath(ob, name))
            raise
        finally:
            computing.discard(name)
        # The value may have been stored meanwhile (a recursive read that
        # succeeded); the first stored value wins so every reader sees one.
        value = d.setdefault(name, value)
        if self.suggestParent:
            suggestParentComponent(ob, name, value)
        return value

    def __set__(self, ob, value):
        ob.__dict__[self.attrName] = value
        if self.suggestParent:
            suggestParentComponent(ob, self.attrName, value)

    def __delete__(self, ob):
        ob.__dict__.pop(self.attrName, None)

    def computeValue(self, ob):
        raise NotImplementedError

    def _where(self):
        return f"{getattr(self, 'ownerName', '?')}.{self.attrName}"

    def _options(self):
        opts = []
        if self.offerAs:
            opts.append(f"offerAs={list(self.offerAs)!r}")
        if self.uponAssembly:
            opts.append("uponAssembly=True")
        if self.adaptTo is not None:
            opts.append(f"adaptTo={self.adaptTo!r}")
        return ''.join(', ' + o for o in opts)


class Make(Attribute):
    """Compute the value from a recipe (see ``callRecipe``)."""

    def __init__(self, recipe, **options):
        super().__init__(**options)
        if not (callable(recipe) or isinstance(recipe, str)):
            raise BindingError(
                f"Make() needs a type, a callable or an import string, got {recipe!r}")
        self.recipe = recipe

    def computeValue(self, ob):
        recipe = self.recipe
        if isinstance(recipe, str):
            recipe = self.recipe = importString(recipe)
        return callRecipe(recipe, ob, self.attrName)

    def __repr__(self):
        return f"Make({self.recipe!r}{self._options()})"


class Obtain(Attribute):
    """Look the value up with ``lookupComponent(instance, key, default)``."""

    def __init__(self, key, default=NOT_GIVEN, **options):
        options.setdefault('suggestParent', False)
        super().__init__(**options)
        self.key = key
        self.default = default

    def computeValue(self, ob):
        try:
            return lookupComponent(ob, self.key, self.default)
        except ComponentLookupError as e:
            raise ComponentLookupError(f"{self._where()}: {e}", e.key, e.tried) from None

    def __repr__(self):
        return f"Obtain({self.key!r}{self._options()})"


class Require(Attribute):
    """A value that must be supplied (as a keyword argument or by assignment)."""

    def __init__(self, doc, **options):
        options.setdefault('doc', doc)
        super().__init__(**options)
        self.doc = doc

    def computeValue(self, ob):
        raise RequirementNotMet(
            f"{self._where()} is required but was not supplied ({self.doc}); pass "
            f"{self.attrName}=... when creating the {getattr(self, 'ownerName', '')}, "
            f"or assign it before use")

    def __repr__(self):
        return f"Require({self.doc!r}{self._options()})"


class Delegate(Attribute):
    """The same-named attribute of another attribute: ``getattr(ob.<attr>, name)``."""

    def __init__(self, attr, **options):
        options.setdefault('suggestParent', False)
        super().__init__(**options)
        self.delegateAttr = attr

    def computeValue(self, ob):
        return getattr(getattr(ob, self.delegateAttr), self.attrName)

    def __repr__(self):
        return f"Delegate({self.delegateAttr!r}{self._options()})"


_OPTIONS = ('offerAs', 'uponAssembly', 'suggestParent', 'adaptTo', 'doc')


def _unknownKeywords(binding, unknown):
    """The message for a misspelled binding keyword, with a "did you mean"."""
    kind = type(binding).__name__
    known = [*_OPTIONS, *(['default'] if isinstance(binding, Obtain) else [])]
    name = sorted(unknown)[0]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}=?" if close else f"the options are {', '.join(known)}"
    # The class body that declares the binding, when there is one: the
    # caller of the binding's constructor chain.
    frame, owner = sys._getframe(1), ''
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    if frame is not None and '__qualname__' in frame.f_locals:
        owner = f" in class {frame.f_locals.get('__module__', '?')}.{frame.f_locals['__qualname__']}"
    return f"{kind}(...){owner}: unknown keyword {name}=; {hint}"


def bindingPath(ob, name):
    """``/store.cache``: the component path of ``ob`` and the binding's name."""
    path = getComponentPath(ob)
    return f"/.{name}" if path == '/' else f"{path}.{name}"


def callRecipe(recipe, parent, name):
    """Make a value from ``recipe`` for ``parent``'s attribute ``name``.

    - a component factory (a Component subclass) is called as ``recipe(parent, name)``;
    - any other type, and any callable with no required positional parameter,
      is called with no arguments;
    - other callables are called with the parent: ``recipe(parent)``.
    """
    if IComponentFactory.providedBy(recipe):
        return recipe(parent, name)
    if isinstance(recipe, type) or not _needsArgument(recipe):
        return recipe()
    return recipe(parent)


def _needsArgument(func):
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return False
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            return True
    return False


def adaptValue(value, iface, context, where):
    """Return ``value`` adapted to ``iface`` using the registry visible from ``context``."""
    if iface.providedBy(value):
        return value
    adapted = getRegistry(context).queryAdapter(value, iface)
    if adapted is None:
        adapted = iface(value, None)
    if adapted is None:
        raise AdaptationError(
            f"{where}: cannot adapt {value!r} to {iface.__identifier__}: register an "
            f"adapter for it in the service area, or make the value provide it")
    return adapted
