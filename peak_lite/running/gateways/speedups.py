"""The compiled twins of the gateways' per-request loops: ``compiled``, or None.

``_speedups.c`` is built at install when a C compiler and Python's headers
are there (setup.py; optional).  Callers use ``compiled`` only for input it
accepts and fall back to their own Python code otherwise, so behaviour and
error messages are the same with it or without it; only the speed differs.
``PEAK_LITE_PURE_PYTHON=1`` in the environment leaves it unused.
"""

import os

compiled = None
if not os.environ.get('PEAK_LITE_PURE_PYTHON'):
    try:
        from peak_lite.running.gateways import _speedups as compiled
    except ImportError:     # built without a C compiler: the same results, slower
        pass

__all__ = ['compiled']
