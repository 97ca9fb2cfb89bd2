"""A child's switch to ``User`` and ``Group``, right after the fork.

The manager keeps its own ids (it must bind, chown and reopen files); each
child gives up root before it runs any application code.  The order matters:
supplementary groups, then the gid, then the uid (after which nothing else
can change).  Changing ids clears the parent-death signal, so it is set again
last.
"""

import ctypes
import logging
import os
import pwd
import signal

log = logging.getLogger('peak_lite.procman')

__all__ = ['dropPrivileges', 'EXIT_PRIVILEGES']

EXIT_PRIVILEGES = 78        # EX_CONFIG: a child that could not switch ids
PR_SET_PDEATHSIG = 1


def dropPrivileges(cfg, parentPid):
    """In a new child: become ``cfg.uid`` / ``cfg.gid``, or exit ``EXIT_PRIVILEGES``.

    - A User with a passwd entry gets ``initgroups``: its own supplementary
      groups, with ``Group`` (or its primary group) as gid.
    - Otherwise the supplementary groups are set to just ``Group``, or to none:
      never are the manager's (root's) groups kept.
    - A User without passwd entry and without Group is refused: its gid would
      stay root's.
    - Then ``PR_SET_PDEATHSIG`` (SIGKILL) again, as the uid change cleared it.

    A failure is logged as one line and the child exits; the manager's
    crash backoff takes it from there.
    """
    if cfg.uid is None and cfg.gid is None:
        return
    try:
        _switch(cfg.uid, cfg.gid)
    except _Refused as e:
        log.critical("child %d cannot drop its privileges: %s", os.getpid(), e)
        os._exit(EXIT_PRIVILEGES)
    except OSError as e:
        log.critical("child %d cannot drop its privileges: %s (is the manager running as "
                     "root?)", os.getpid(), e.strerror)
        os._exit(EXIT_PRIVILEGES)
    _dieWithParent(parentPid)


class _Refused(Exception):
    pass


def _switch(uid, gid):
    entry = None
    if uid is not None:
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            if gid is None:
                raise _Refused(f"User {uid} has no passwd entry and no Group is given, so "
                               f"its group would stay root's: add a Group line") from None
        if gid is None:
            gid = entry.pw_gid
    if entry is not None:
        os.initgroups(entry.pw_name, gid)
    else:
        os.setgroups([gid] if gid is not None else [])
    os.setgid(gid)
    if uid is not None:
        os.setuid(uid)


def _dieWithParent(parentPid):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
    if os.getppid() != parentPid:     # the manager died before the signal was armed again
        os._exit(1)
