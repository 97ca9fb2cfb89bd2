"""Sentinels, property names and the rule that tells paths from URLs."""

import re

from peak_lite.binding.interfaces import InvalidKey

__all__ = ['NOT_GIVEN', 'NOT_FOUND', 'PropertyName', 'splitURL']


class _Sentinel:
    __slots__ = ('_name',)

    def __init__(self, name):
        self._name = name

    def __repr__(self):
        return self._name

    def __bool__(self):
        return False

    def __reduce__(self):
        return self._name


NOT_GIVEN = _Sentinel('NOT_GIVEN')
"""An argument that was not passed (distinct from ``None``)."""

NOT_FOUND = _Sentinel('NOT_FOUND')
"""What ``_getConfigData`` returns when a component cannot answer a key."""

_SEGMENT = r'[A-Za-z0-9_+\-]+'
_PROPERTY_RE = re.compile(rf'^{_SEGMENT}(\.{_SEGMENT})*(\.\*)?$|^\*$')
# A URL scheme as RFC 3986 has it, minus '.', so that 'pkg.mod:obj' is never
# mistaken for a URL; such import specs are spelled 'import:pkg.mod:obj'.
_SCHEME_RE = re.compile(r'^([A-Za-z][A-Za-z0-9+\-]*):')


class PropertyName(str):
    """A configuration property name such as ``peak.running.app``.

    Segments are letters, digits, ``_``, ``+`` and ``-`` joined by dots.  A
    name ending in ``.*`` (or just ``*``) is a wildcard rule: it is valid in
    configuration, never as a lookup key.
    """

    __slots__ = ()

    def __new__(cls, name):
        if isinstance(name, PropertyName):
            return name
        if not isinstance(name, str) or not _PROPERTY_RE.match(name):
            raise InvalidKey(
                f"invalid property name {name!r}: use dot-separated segments of "
                f"letters, digits, '_', '+' or '-' (for example 'peak.running.app')")
        return super().__new__(cls, name)

    def isWildcard(self):
        return self.endswith('*')

    def matchPatterns(self):
        """Yield this name, then the wildcard rules matching it, nearest first.

        ``a.b.c`` yields ``a.b.c``, ``a.b.*``, ``a.*``, ``*``.
        """
        yield self
        parts = self.split('.')
        for i in range(len(parts) - 1, -1, -1):
            yield PropertyName('.'.join(parts[:i] + ['*']))

    def __repr__(self):
        return f"PropertyName({str.__repr__(self)})"


def splitURL(key):
    """Return ``(scheme, key)`` if the string ``key`` is a URL, else None.

    A URL starts with a scheme (a letter, then letters, digits, '+' or '-';
    no '.') and a colon.  The scheme is lower-cased.
    """
    m = _SCHEME_RE.match(key)
    if m is None:
        return None
    return m.group(1).lower(), key
