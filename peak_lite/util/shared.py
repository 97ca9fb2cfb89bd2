"""Writing into memory that other processes read while it changes."""

__all__ = ['store']


def store(buffer, offset, fmt, *values):
    """Write ``values``, packed by the Struct ``fmt``, at ``offset`` of ``buffer`` in one copy.

    Not ``fmt.pack_into(buffer, offset, ...)``: it zero-fills its target before
    it packs, so a reader in another process can see, for an instant, every
    field at zero (a scoreboard slot free, its counters back at zero).  One copy
    takes each field from its old value to its new one.
    """
    buffer[offset:offset + fmt.size] = fmt.pack(*values)
