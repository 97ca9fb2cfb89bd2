"""How much memory a child uses, read from /proc, and the ``MaxMemory`` size value.

USS (unique set size) is the memory only this process holds: the
``Private_Clean`` and ``Private_Dirty`` lines of ``/proc/PID/smaps_rollup``.
Pages a child shares copy-on-write with the manager and its siblings (the
preloaded application) are not counted until the child writes to them,
unlike RSS, which counts every page the child maps.
"""

import re

__all__ = ['memoryOf', 'parseSize', 'MEMORY_CHECK_EVERY']

#: With MaxMemory set, how often the manager reads each child's USS, in
#: seconds: one read of smaps_rollup per child, about 50 µs each.
MEMORY_CHECK_EVERY = 10.0

_SIZE = re.compile(r'([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([KMG]B?)?', re.IGNORECASE)
_UNITS = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}
_FIELDS = {b'Rss:': 'rss', b'Pss:': 'pss', b'Private_Clean:': 'uss', b'Private_Dirty:': 'uss'}


def parseSize(text):
    """``512MB``, ``1.5GB``, ``800KB`` (units of 1024) or ``0`` (off): bytes, an int."""
    m = _SIZE.fullmatch(text)
    if not m or (m.group(2) is None and float(m.group(1)) != 0):
        raise ValueError(f'expected a size with a unit, such as 512MB, 2GB or 800KB'
                         f' (or 0 for off), got {text!r}')
    value = int(float(m.group(1)) * _UNITS[m.group(2)[0].upper()] if m.group(2) else 0)
    if value >= 1 << 50:
        raise ValueError(f'{text!r} is more memory than any machine has')
    return value


def memoryOf(pid):
    """``{'uss': bytes, 'pss': bytes, 'rss': bytes}`` of process ``pid``; None once it is gone.

    smaps_rollup is readable by the process's own user and by root: the
    manager reads its children's, with ``User`` too.
    """
    try:
        with open(f'/proc/{pid}/smaps_rollup', 'rb') as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    found = {'uss': 0, 'pss': 0, 'rss': 0}
    for line in text.splitlines():
        name, _, rest = line.partition(b' ')
        kind = _FIELDS.get(name)
        if kind is not None:
            found[kind] += int(rest.split()[0]) * 1024
    return found
