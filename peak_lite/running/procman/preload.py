"""Step 4 of startup: build the application once, in the parent, before any fork."""

import gc
import logging
import threading

from peak_lite import config, storage
from peak_lite.binding import getRootComponent
from peak_lite.config import checkIniValues, checkTree, componentsOf
from peak_lite.running.assembly import buildCommitted, describeFailure
from peak_lite.running.bootstrap import Bootstrap
from peak_lite.running.interfaces import LoadError, RunningError
from peak_lite.util.imports import importString

log = logging.getLogger('peak_lite.procman')

__all__ = ['preload', 'checkApp']


def preload(cfg, io, listenerFds=()):
    """Import, build the ``Command`` subject committed, check fork hygiene, freeze.

    The build is ``buildCommitted``'s, the same as every other command's.

    ``io`` holds the ``stdin``/``stdout``/``stderr``/``environ`` the subject
    gets.  Returns the subject.  Raises LoadError (exit 3) when the app does
    not load, after the transaction has been aborted.
    """
    for spec in cfg.imports:
        try:
            importString(spec)
        except ImportError as e:
            raise LoadError(f"{cfg.filename}:{cfg.lineOf('import') or 1}: import {spec}: {e}")
    iniFiles = [cfg.ChildConfig] if cfg.ChildConfig else []
    root = config.makeRoot(iniFiles=iniFiles, environ=io['environ'])
    argv = ['peak'] + list(cfg.Command)
    try:
        subject = buildCommitted(Bootstrap, root, argv=argv, **io)
    except RunningError as e:
        # Keep the subject's own exit status (2 for a usage error, 3 for a load error).
        raise type(e)(f"{cfg.filename}:{cfg.lineOf('Command') or 1}: Command "
                      f"{' '.join(cfg.Command)}: {e}") from e
    except config.ConfigError:
        raise
    except Exception as e:
        raise LoadError(f"{cfg.filename}:{cfg.lineOf('Command') or 1}: Command "
                        f"{' '.join(cfg.Command)}: the application failed to load: "
                        f"{describeFailure(e)}") from e
    storage.beforeFork(log)
    for fd, description in storage.inheritedSockets(exclude=listenerFds):
        log.warning("fd %d is an open network socket (%s) that every child will inherit; "
                    "open it after the fork, or close it during preload", fd, description)
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and thread.is_alive():
            log.warning("thread %r is running at fork: the children get no copy of it, and a"
                        " lock it holds at that moment stays locked in every child; start it"
                        " after the fork, or stop it during preload", thread.name)
    gc.collect()
    gc.freeze()
    return subject


def checkApp(cfg, subject):
    """``--check``: what the app will look up when it serves must be there now.

    Resolves every property the built tree's components obtain
    (``config.checkTree``) and evaluates every value of ``ChildConfig``
    (``config.checkIniValues``).  Raises ConfigError, one line.
    """
    checkTree(subject)
    if cfg.ChildConfig:
        area = None
        for component in componentsOf(subject):
            root = getRootComponent(component)
            if cfg.ChildConfig in getattr(root, 'loadedFiles', list)():
                area = root
                break
        if area is None:
            area = config.makeRoot(iniFiles=[cfg.ChildConfig], environ={})
        checkIniValues(area, cfg.ChildConfig)
