"""Import objects named by strings: ``pkg.mod:attr.sub`` or ``pkg.mod.attr``."""

import importlib

from peak_lite.util.interfaces import ImportStringError

__all__ = ['importString', 'importObject', 'lazyImport']


def importString(spec):
    """Import and return the object named by ``spec``.

    ``'pkg.mod:attr.sub'`` imports ``pkg.mod`` and walks ``attr.sub``.
    ``'pkg.mod.attr'`` imports the longest importable module prefix and walks
    the rest as attributes.  Failures raise ImportStringError naming the spec
    and the part that failed.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ImportStringError(f"import spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if ':' in spec:
        modname, _, attrs = spec.partition(':')
        module = _importModule(spec, modname)
        return _walk(spec, module, modname, ':', attrs.split('.') if attrs else [])
    parts = spec.split('.')
    # Try the longest module prefix first; fall back to shorter ones only when
    # the missing module is the one we asked for, never a nested import error.
    for i in range(len(parts), 0, -1):
        modname = '.'.join(parts[:i])
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name is not None and modname.startswith(e.name) and (
                    e.name == modname or modname.startswith(e.name + '.')):
                continue
            raise ImportStringError(
                f"cannot import {spec!r}: importing module {modname!r} failed: {e}") from e
        except Exception as e:
            raise ImportStringError(
                f"cannot import {spec!r}: importing module {modname!r} raised "
                f"{type(e).__name__}: {e}") from e
        return _walk(spec, module, modname, '.', parts[i:])
    raise ImportStringError(f"cannot import {spec!r}: no module named {parts[0]!r}")


def _importModule(spec, modname):
    if not modname:
        raise ImportStringError(f"cannot import {spec!r}: the module part before ':' is empty")
    try:
        return importlib.import_module(modname)
    except ModuleNotFoundError as e:
        raise ImportStringError(
            f"cannot import {spec!r}: no module named {e.name or modname!r}") from e
    except Exception as e:
        raise ImportStringError(
            f"cannot import {spec!r}: importing module {modname!r} raised "
            f"{type(e).__name__}: {e}") from e


def _walk(spec, ob, path, sep, attrs):
    for name in attrs:
        if not name:
            raise ImportStringError(f"cannot import {spec!r}: empty attribute name after {path!r}")
        try:
            ob = getattr(ob, name)
        except AttributeError:
            raise ImportStringError(
                f"cannot import {spec!r}: {path!r} has no attribute {name!r}") from None
        path, sep = f"{path}{sep}{name}", '.'
    return ob


def importObject(spec):
    """Return ``spec`` imported if it is a string, else ``spec`` itself."""
    return importString(spec) if isinstance(spec, str) else spec


class lazyImport:
    """A callable that imports ``spec`` on first call and returns the object."""

    __slots__ = ('spec', '_ob')

    def __init__(self, spec):
        self.spec = spec
        self._ob = None

    def __call__(self):
        if self._ob is None:
            self._ob = importString(self.spec)
        return self._ob

    def __repr__(self):
        return f"lazyImport({self.spec!r})"
