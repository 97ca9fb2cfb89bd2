"""Contracts and exceptions of the component model (peak_lite.binding)."""

from zope.interface import Attribute, Interface
from zope.interface.interfaces import ComponentLookupError as _ZopeLookupError


class BindingError(Exception):
    """Base class of every error raised by peak_lite.binding."""


class ComponentLookupError(BindingError, _ZopeLookupError):
    """A ``get``-style lookup found nothing.

    The message names the key looked for and the components tried, in order.
    ``key`` and ``tried`` (a list of component paths) carry the same facts.
    It is also a ``zope.interface.interfaces.ComponentLookupError``, so code
    written against zope.component's ``getUtility`` catches it unchanged.
    """

    def __init__(self, message, key=None, tried=()):
        super().__init__(message)
        self.key = key
        self.tried = list(tried)


class ParentAlreadySet(BindingError):
    """A component's parent was set explicitly and a different parent was given."""


class RequirementNotMet(BindingError, AttributeError):
    """A ``Require`` binding was read but no value was ever supplied.

    It is an AttributeError too, so ``hasattr`` and ``getattr(ob, name, d)``
    treat the attribute as missing.
    """


class CircularDefinition(BindingError):
    """Computing a binding needed the value of that same binding."""


class AdaptationError(BindingError, TypeError):
    """A binding with ``adaptTo=I`` computed a value that cannot be adapted to I."""


class InvalidKey(BindingError, ValueError):
    """A lookup key is neither an interface, a property name, a path nor a URL."""


class IComponent(Interface):
    """A node in a tree of components.

    A component has at most one parent.  The parent may be set once; a later,
    different parent is a ParentAlreadySet error unless the first was only
    *suggested*.  A parent of ``None`` makes the component a root.

    **Assembly.**  A component is assembled once its parent chain reaches a
    root.  Then, exactly once and in this order:

    1. its children that are waiting for assembly are assembled (children
       first, recursively);
    2. every binding declared with ``uponAssembly=True`` is computed;
    3. ``uponAssembly()`` runs.

    While this happens the component counts as assembled for components
    created under it, which are therefore assembled at once.  If any step
    raises, the component is left unassembled (what was done stays done: a
    computed binding stays cached, an assembled child stays assembled) and the
    whole sequence can be retried, for example by setting the parent again
    or by calling ``assemble()``.
    """

    def getParentComponent():
        """Return the parent, ``None`` for a root, or NOT_GIVEN if not set yet."""

    def getComponentName():
        """Return the name under which the parent knows this component, or None."""

    def setParentComponent(parentComponent, componentName=None, suggest=False):
        """Set the parent (and name).

        With ``suggest=True`` the call is ignored when a parent is already set,
        and a later explicit set may replace it.  An explicit set that differs
        from an earlier explicit set raises ParentAlreadySet.  If the new
        parent is assembled (or is ``None``) the component is assembled at once.
        """

    def isAssembled():
        """True once assembly has completed successfully."""

    def assemble():
        """Assemble now if the parent chain reaches a root; return isAssembled()."""

    def uponAssembly():
        """Hook run once, at the end of assembly; the default does nothing.

        Override it to preload caches: under procman it runs in the parent
        process, inside the preload transaction, before any fork.
        """

    def _getConfigData(key, targetObj):
        """Answer ``key`` from this component only, or return NOT_FOUND.

        ``key`` is an interface or a PropertyName; ``targetObj`` is the
        component whose lookup is being answered.  The base implementation
        tries the bindings offered with ``offerAs``, then, for an interface,
        the utilities registered in this component's own registry (if it owns
        one).  Service areas extend it with their configuration rules.
        """

    def _ownRegistry():
        """Return the ``zope.interface.registry.Components`` this component owns, or None.

        Roots and service areas own one, created on first use, whose bases
        chain to the nearest ancestor's registry and finally to the global
        site manager.
        """


class IComponentFactory(Interface):
    """Something that makes components: ``factory(parentComponent, componentName)``."""

    def __call__(parentComponent=None, componentName=None, **attrs):
        """Create a component under ``parentComponent``."""


class IAttributeBinding(Interface):
    """A descriptor computing an attribute lazily, once per instance.

    The first read computes the value and caches it in the instance; later
    reads return the cached value.  Assigning stores a value (and suggests the
    instance as the value's parent when ``suggestParent`` is true); deleting
    drops the cached value so the next read computes it again.
    """

    attrName = Attribute("The attribute name, set when the owning class is created")
    offerAs = Attribute("Keys (interfaces, property names) this value answers for descendants")
    uponAssembly = Attribute("True if the value is computed during assembly")
    suggestParent = Attribute("True if the value is offered the instance as its parent")
    adaptTo = Attribute("An interface the computed value is adapted to, or None")

    def computeValue(ob):
        """Compute the value for instance ``ob`` (before adaptation and caching)."""
