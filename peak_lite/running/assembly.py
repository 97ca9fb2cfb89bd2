"""Building a command: one committed assembly, and errors that point at the author's code.

Every way of building a command goes through ``buildCommitted``: the
interpreters (``peak CGI``, ``HTTP``, ``runIni``, ``Bootstrap`` itself)
because their factory call is wrapped in it, and procman's preload because it
calls it explicitly.  So what an assembly event writes is committed before
anything is served, or aborted when the build fails, whatever started it.
"""

import contextvars
import os
import sysconfig
import traceback

import transaction

from peak_lite.binding import failureLocation
from peak_lite.running.interfaces import LoadError

__all__ = ['buildCommitted', 'describeFailure', 'authorFrame']

_building = contextvars.ContextVar('peak_lite.running.building', default=False)

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _dirs(*keys):
    paths = sysconfig.get_paths()
    return tuple(sorted({os.path.abspath(paths[k]) + os.sep for k in keys if paths.get(k)}))


_STDLIB_DIRS = _dirs('stdlib', 'platstdlib')
_LIBRARY_DIRS = _dirs('stdlib', 'platstdlib', 'purelib', 'platlib')


def buildCommitted(build, *args, **kw):
    """Return ``build(*args, **kw)``, run inside a transaction committed before returning.

    The transaction is begun on ``transaction.manager`` (any transaction
    still open there is aborted first, as ``begin()`` does), and it is aborted
    when ``build`` raises.  A call made while another is building (an
    interpreter that builds another interpreter) joins the outer transaction,
    so a command tree is built and committed as one.  A failed commit raises
    LoadError.
    """
    if _building.get():
        return build(*args, **kw)
    token = _building.set(True)
    try:
        txn = transaction.manager.begin()
        try:
            result = build(*args, **kw)
        except BaseException:
            txn.abort()
            raise
        try:
            txn.commit()
        except Exception as e:
            txn.abort()
            raise LoadError(f"committing what the application wrote while it was assembled"
                            f" failed: {describeFailure(e)}") from e
        return result
    finally:
        _building.reset(token)


def _isAuthorFile(filename, installedToo=False):
    if filename.startswith('<'):
        return False
    path = os.path.abspath(filename)
    if path.startswith(_PACKAGE_DIR):
        return False
    if installedToo:
        return not path.startswith(_STDLIB_DIRS)
    return not path.startswith(_LIBRARY_DIRS) and os.sep + 'site-packages' + os.sep not in path


def _authorFailure(error):
    """``(frame, exception)``: the innermost frame of the author's code in ``error``'s
    traceback, or else in its causes' (``raise X from e``), and the exception it is in.

    An application installed as a package (in site-packages) is the author's
    code too when no frame outside installed packages is found.
    """
    for installedToo in (False, True):
        seen, current = set(), error
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            for frame in reversed(traceback.extract_tb(current.__traceback__)):
                if _isAuthorFile(frame.filename, installedToo):
                    return frame, current
            current = current.__cause__
    return None, None


def authorFrame(error):
    """The innermost traceback frame of ``error`` (or its causes) in the author's code.

    The author's code is any file outside peak_lite, the standard library and
    installed packages; if there is none, any file outside peak_lite and the
    standard library.  Returns a ``traceback.FrameSummary`` or None.
    """
    return _authorFailure(error)[0]


def _shortPath(filename):
    path = os.path.abspath(filename)
    here = os.getcwd() + os.sep
    return path[len(here):] if path.startswith(here) else path


def describeFailure(error):
    """One line: ``FILE:LINE in FUNC: Type: message (at /component.path)``.

    The location is the innermost frame of the author's code in the error or
    its causes, and the exception named is the one raised there; the
    component path is the component (and binding) being computed or
    assembled when it was raised, if any.
    """
    frame, raised = _authorFailure(error)
    if raised is None:
        raised = error
    message = ' '.join(str(raised).split())
    text = f"{type(raised).__name__}: {message}" if message else type(raised).__name__
    where = failureLocation(raised) or failureLocation(error)
    if where:
        text += f" (at {where})"
    if frame is not None:
        text = f"{_shortPath(frame.filename)}:{frame.lineno} in {frame.name}: {text}"
    return text
