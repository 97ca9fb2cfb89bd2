"""The previous generation of children, carried across a reload's exec and retired.

A reload (``Reload overlap``) execs the manager without stopping its
children: a process's children stay its children across ``execve``, so the
new image reaps them as before.  What the new image cannot see is the old
code, so it never repairs or grows the old generation: it only keeps it
serving until ``Prefork`` children of the new generation are ready, then
retires it (SIGHUP, ``StopTimeout``, SIGTERM, ``KillTimeout``, SIGKILL).

Carried in the environment (``CARRY_GENERATION``), as JSON: the old
children's pids, the write end of the pipe whose EOF tells them that their
manager died (see ``process.ParentPipe``), kept open across the exec so that
they do not take the exec for a death, and a descriptor of their scoreboard.
The new generation gets a fresh scoreboard, sized by the new config; the
old children keep writing to theirs, which the new image maps read-only
(``scoreboard.CarriedBoard``): their counts are in its totals while they
serve, and added to its tally as each of them exits.  A generation carried a
second time (a reload during a reload) is not on that board: its counts up
to the second exec were added to the tally before it.
"""

import fcntl
import json
import logging
import os

from peak_lite.running.procman.interfaces import ProcmanError
from peak_lite.running.procman.scoreboard import CarriedBoard
from peak_lite.running.process import ProcessProxy

log = logging.getLogger('peak_lite.procman')

__all__ = ['CARRY_GENERATION', 'OldGeneration', 'carryGeneration']

CARRY_GENERATION = 'PEAK_PROCMAN_GENERATION'


def carryGeneration(env, pids, stopping, pipeFds, boardFd=None):
    """Put the children ``pids`` (``stopping``: those already asked to stop), the
    parent pipes' write ends ``pipeFds`` and their scoreboard's ``boardFd`` into
    ``env``; keep the pipes open across exec (``boardFd`` is inheritable already)."""
    for fd in pipeFds:
        flags = fcntl.fcntl(fd, fcntl.F_GETFD)
        fcntl.fcntl(fd, fcntl.F_SETFD, flags & ~fcntl.FD_CLOEXEC)
    env[CARRY_GENERATION] = json.dumps(dict(pids=sorted(pids), stopping=sorted(stopping),
                                            pipes=list(pipeFds), board=boardFd))


class OldGeneration:
    """The children of the image before the exec: kept serving, then retired."""

    def __init__(self, pids, stopping, pipeFds, cfg, loop, reaper, boardFd=None):
        self.cfg = cfg
        self.loop = loop
        self.board = None
        if boardFd is not None:
            try:
                self.board = CarriedBoard(boardFd)
            except (OSError, ProcmanError) as e:
                log.warning("the previous generation's scoreboard was not carried (%s): "
                            "its requests from now on are not counted", e)
        self.children = {}
        self.stage = {}
        self.pipeFds = []
        for fd in pipeFds:
            try:
                fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
            except OSError:
                continue     # not carried after all
            self.pipeFds.append(fd)
        for pid in pids:
            proxy = reaper.track(ProcessProxy(pid))
            self.children[pid] = proxy
            self.stage[pid] = 'HUP' if pid in stopping else None
        self.retiring = False

    @classmethod
    def fromEnviron(cls, environ, cfg, loop, reaper):
        """The generation the previous image carried, or None."""
        text = environ.pop(CARRY_GENERATION, None)
        if not text:
            return None
        try:
            data = json.loads(text)
            pids = [int(p) for p in data['pids']]
            stopping = {int(p) for p in data.get('stopping', ())}
            pipes = [int(fd) for fd in data.get('pipes', ())]
            board = data.get('board')
            board = None if board is None else int(board)
        except (ValueError, KeyError, TypeError):
            log.error("ignoring a malformed %s: %r", CARRY_GENERATION, text[:200])
            return None
        return cls(pids, stopping, pipes, cfg, loop, reaper, board)

    def __len__(self):
        return len(self.children)

    def pids(self):
        return list(self.children)

    def stopping(self):
        return [pid for pid, stage in self.stage.items() if stage is not None]

    def serving(self):
        """Those not asked to stop: they accept until they are retired."""
        return [pid for pid, stage in self.stage.items() if stage is None]

    def fds(self):
        """Descriptors a new child must not inherit."""
        return list(self.pipeFds)

    def carriedSlots(self):
        """``(board, slot)`` of each child still here whose slot the carried board holds."""
        if self.board is None:
            return []
        found = [(self.board, self.board.slotOf(pid)) for pid in self.children]
        return [pair for pair in found if pair[1] is not None]

    def absorbAll(self, tally):
        """Add every child's counts so far to ``tally``; forget the board (before
        this generation is carried again, without it)."""
        for board, index in self.carriedSlots():
            tally.absorbSlot(board, index)
        self.closeBoard()

    def closeBoard(self):
        if self.board is not None:
            self.board.close()
            self.board = None

    def owns(self, proxy):
        return self.children.get(proxy.pid) is proxy

    def exited(self, proxy, tally):
        """One of ours was reaped: its counts go to ``tally``.  True once the whole
        generation is gone."""
        index = self.board.slotOf(proxy.pid) if self.board is not None else None
        if index is not None:
            tally.absorbSlot(self.board, index)
        del self.children[proxy.pid]
        stage = self.stage.pop(proxy.pid, None)
        if stage is None and not self.retiring:
            log.warning("child %d of the previous generation %s before the new one was "
                        "ready; it is not replaced", proxy.pid, proxy.describeExit())
        else:
            log.info("child %d of the previous generation %s (retired)", proxy.pid,
                     proxy.describeExit())
        if not self.children:
            self.close()
            return True
        return False

    def retire(self, quick=False):
        """Stop them all: gracefully (HUP first), or quickly (TERM first)."""
        self.retiring = True
        if self.children:
            log.info("retiring %d children of the previous generation: %s", len(self.children),
                     ' '.join(map(str, sorted(self.children))))
        for pid in list(self.children):
            stage = self.stage.get(pid)
            if quick and stage in (None, 'HUP'):
                self._signal(pid, 'TERM')
            elif stage is None:
                self._signal(pid, 'HUP')
            elif stage == 'HUP':      # already draining before the exec: its clock restarts
                self.loop.callLater(self.cfg.StopTimeout, self._escalate, pid, 'HUP')

    def _signal(self, pid, stage):
        proxy = self.children.get(pid)
        if proxy is None:
            return
        self.stage[pid] = stage
        if not proxy.sendSignal(f'SIG{stage}'):
            return
        delay = {'HUP': self.cfg.StopTimeout, 'TERM': self.cfg.KillTimeout}.get(stage)
        if delay is not None:
            self.loop.callLater(delay, self._escalate, pid, stage)

    def _escalate(self, pid, stage):
        proxy = self.children.get(pid)
        if proxy is None or not proxy.isRunning or self.stage.get(pid) != stage:
            return
        following = 'TERM' if stage == 'HUP' else 'KILL'
        log.warning("child %d of the previous generation still running after SIG%s; "
                    "sending SIG%s", pid, stage, following)
        self._signal(pid, following)

    def close(self):
        self.closeBoard()
        for fd in self.pipeFds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.pipeFds = []
