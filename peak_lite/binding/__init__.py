"""Components, attribute bindings, assembly events and lookups."""

from peak_lite.binding.attributes import (  # noqa: F401
    Attribute, Delegate, Make, Obtain, Require, adaptValue, callRecipe)
from peak_lite.binding.components import (  # noqa: F401
    Component, ComponentClass, failureLocation, getComponentName, getComponentPath,
    getParentComponent, getRegistry, getRootComponent, iterParents, noteFailure,
    queryLocalUtility, suggestParentComponent)
from peak_lite.binding.interfaces import (  # noqa: F401
    AdaptationError, BindingError, CircularDefinition, ComponentLookupError, IAttributeBinding, IComponent,
    IComponentFactory, InvalidKey, ParentAlreadySet, RequirementNotMet)
from peak_lite.binding.lookup import (  # noqa: F401
    SCHEMES_PREFIX, importURL, lookupComponent, queryComponent)
from peak_lite.binding.names import NOT_FOUND, NOT_GIVEN, PropertyName, splitURL  # noqa: F401
