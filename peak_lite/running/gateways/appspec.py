"""Resolving ``pkg.mod:obj`` into a WSGI application, eagerly."""

from peak_lite import binding
from peak_lite.running.assembly import authorFrame, describeFailure
from peak_lite.running.interfaces import IWSGIApplication, LoadError
from peak_lite.util.imports import importString
from peak_lite.util.interfaces import ImportStringError

__all__ = ['resolveApp', 'adaptToWSGI']


def resolveApp(parentComponent, spec):
    """Return the WSGI application named by ``spec``, built now.

    ``spec`` names a WSGI callable, or a peak_lite component class, which is
    instantiated under ``parentComponent`` (so it is assembled as soon as
    that chain reaches a root) and then adapted to IWSGIApplication (see
    ``adaptToWSGI``): adaptation happens after the component's assembly
    events, inside the same build transaction.  Anything that goes wrong
    raises LoadError with one line naming the spec and, when the author's
    code raised, its file, line and component path.
    """
    try:
        ob = importString(spec)
    except ImportStringError as e:
        if authorFrame(e) is not None:
            raise LoadError(f"importing {spec!r} failed: {describeFailure(e)}") from e
        raise LoadError(f"{e}; check the application spec (pkg.module:object)") from e
    if isinstance(ob, type) and issubclass(ob, binding.Component):
        try:
            ob = ob(parentComponent=parentComponent)
        except Exception as e:
            raise LoadError(f"building application {spec!r} failed: "
                            f"{describeFailure(e)}") from e
    app = adaptToWSGI(ob)
    if app is None:
        raise LoadError(
            f"{spec!r} is a {type(ob).__name__}, not a WSGI application: make it callable as"
            " app(environ, start_response) or register an adapter to IWSGIApplication")
    return app


def adaptToWSGI(ob):
    """``ob`` as a WSGI application, or None.

    In order: ``ob`` if it provides IWSGIApplication; an adapter registered
    in the registry of ``ob``'s service area (``binding.getRegistry(ob)``,
    which falls back to the areas above it and the global registry); ``ob``
    itself if it is callable.
    """
    if IWSGIApplication.providedBy(ob):
        return ob
    adapted = binding.getRegistry(ob).queryAdapter(ob, IWSGIApplication)
    if adapted is not None:
        return adapted
    return ob if callable(ob) else None
