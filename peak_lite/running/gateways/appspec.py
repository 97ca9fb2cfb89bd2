"""Resolving ``pkg.mod:obj`` into a WSGI application, eagerly."""

from peak_lite import binding
from peak_lite.running.interfaces import IWSGIApplication, LoadError
from peak_lite.util.imports import importString
from peak_lite.util.interfaces import ImportStringError

__all__ = ['resolveApp']


def resolveApp(parentComponent, spec):
    """Return the WSGI application named by ``spec``, built now.

    ``spec`` names a WSGI callable, or a peak_lite component class, which is
    instantiated under ``parentComponent`` (so it is assembled as soon as
    that chain reaches a root) and adapted to IWSGIApplication.  Anything
    that goes wrong raises LoadError with one line naming the spec.
    """
    try:
        ob = importString(spec)
    except ImportStringError as e:
        raise LoadError(f"{e}; check the application spec (pkg.module:object)") from e
    if isinstance(ob, type) and issubclass(ob, binding.Component):
        try:
            ob = ob(parentComponent=parentComponent)
        except Exception as e:
            raise LoadError(f"building application {spec!r} failed: "
                            f"{type(e).__name__}: {e}") from e
        app = IWSGIApplication(ob, None)
        if app is None and callable(ob):
            app = ob
    else:
        app = ob if callable(ob) else IWSGIApplication(ob, None)
    if app is None:
        raise LoadError(
            f"{spec!r} is a {type(ob).__name__}, not a WSGI application: make it callable as"
            " app(environ, start_response) or register an adapter to IWSGIApplication")
    return app
