"""The status listener's endpoints, answered from the manager's memory and scoreboard.

- ``/metrics``: see metrics.py;
- ``/healthz``: 200 while the manager's loop runs (it is the loop that answers),
  and through a restart's exec, when the status keeper answers (keeper.py);
- ``/readyz``: 200 while a child accepts, of either generation during an
  overlapping reload; 503 from SIGTERM on (and during ``DrainDelay``), or
  while no child has finished starting;
- ``/status``: the ``peak procman --status --json`` document (control.poolDocument);
- ``/``: an HTML page for people (page.py).
"""

import json
import logging
import os
from importlib import metadata

from zope.interface import implementer

from peak_lite.running.interfaces import SocketError
from peak_lite.running.procman.control import poolDocument
from peak_lite.running.procman.interfaces import ConfigError
from peak_lite.running.procman.scoreboard import BUSY, IDLE
from peak_lite.running.procman.status import metrics, page
from peak_lite.running.procman.status.interfaces import IStatusService
from peak_lite.running.procman.status.keeper import STATUS_CARRY_ENV, startKeeper
from peak_lite.running.procman.status.probes import MemoryReader, queueLengths
from peak_lite.running.procman.status.server import StatusServer
from peak_lite.running.procman.status.takeover import Takeover
from peak_lite.running.sockets import Listeners

log = logging.getLogger('peak_lite.procman')

__all__ = ['StatusService', 'openStatus', 'VERSION']


def _version():
    try:
        return metadata.version('peak_lite')
    except metadata.PackageNotFoundError:   # not installed as a distribution: still serve
        return 'unknown'


VERSION = _version()


def openStatus(manager):
    """The manager's StatusService, listening on ``StatusListen``; None without one.

    After a restart's exec it adopts the socket its previous self carried, if
    the address is the same, and takes over from the status keeper once its
    loop turns (see keeper.py).  An address that cannot be bound is a
    ConfigError at the StatusListen line.
    """
    cfg = manager.cfg
    address = getattr(cfg, 'StatusListen', None)
    if address is None:
        Listeners.carried(manager.environ, STATUS_CARRY_ENV).close()
        Takeover(manager.environ)
        return None
    try:
        listener, = Listeners.open([address], manager.environ,
                                   carryName=STATUS_CARRY_ENV).listeners
    except SocketError as e:
        raise ConfigError(f"StatusListen {e}", cfg.filename,
                          cfg.lineOf('StatusListen') or 1) from None
    service = StatusService(manager, listener)
    service.takeover = Takeover(manager.environ, service.server, manager.loop)
    return service


@implementer(IStatusService)
class StatusService:
    """See IStatusService."""

    def __init__(self, manager, listener):
        self.manager = manager
        self.listener = listener
        self.memory = MemoryReader()
        self.keeper = None           # the one we fork before a restart's exec
        self.takeover = None         # from the one our previous self forked
        self.server = StatusServer(listener.sock, manager.loop, self.respond)
        log.info("status listener on %s", listener.describe())

    def respond(self, method, path, headers):
        if path == '/metrics':
            contentType, body = metrics.render(
                self.snapshot(), metrics.wantsOpenMetrics(headers.get('accept')))
            return 200, contentType, body
        if path == '/healthz':
            return 200, 'text/plain; charset=utf-8', b'ok\n'
        if path == '/readyz':
            why = self.notReady()
            if why:
                return 503, 'text/plain; charset=utf-8', f'not ready: {why}\n'.encode()
            return 200, 'text/plain; charset=utf-8', b'ready\n'
        if path == '/status':
            body = json.dumps(self.document(), indent=2) + '\n'
            return 200, 'application/json', body.encode()
        if path in ('/', '/index.html'):
            return 200, 'text/html; charset=utf-8', page.render(self.document(),
                                                                 self.snapshot())
        return 404, 'text/plain; charset=utf-8', b'not found: try /metrics, /healthz, ' \
                                                 b'/readyz, /status or /\n'

    def notReady(self):
        """Why the pool is not ready, or '' when it is."""
        m = self.manager
        if m.shutdown in ('stop', 'quit') or m.draining:
            return 'stopping'
        # A reload is not a stop: ready while a child of either generation accepts.
        if m.old is not None and m.old.serving():
            return ''
        for child in m.children.values():
            if child.stopStage is None and m.board.read(child.slot)[1] in (IDLE, BUSY):
                return ''
        return 'no child accepts'

    def ready(self):
        return not self.notReady()

    def document(self):
        m = self.manager
        slots = [s for s in m.board.occupied() if s['pid'] in m.children]
        return poolDocument(m.pid, m.cfg.filename, slots, self._rss)

    def _rss(self, pid):
        memory = self.memory.read(pid)
        return None if memory is None else memory['rss']

    def snapshot(self):
        m = self.manager
        children = sorted(m.children.values(), key=lambda c: c.number)
        requests, durationSum, codes, buckets = m.tally.totals(
            m.board, [c.slot for c in children],
            m.old.carriedSlots() if m.old is not None else ())
        self.memory.forget([c.pid for c in children])
        memory = []
        for child in children:
            found = self.memory.read(child.pid)
            if found is not None:
                memory.append((str(child.number), found))
        queues = [(listener.describe(), length, limit) for listener, (_, length, limit)
                  in zip(m.listeners.listeners, queueLengths(m.listeners.sockets))]
        return dict(workers=m.board.counts(), requests=requests, durationSum=durationSum,
                    codes=codes, buckets=buckets, queues=queues, spawns=m.tally.spawns,
                    exits=m.tally.exits, memory=memory, reloads=m.tally.reloads,
                    version=VERSION, config=os.path.abspath(m.cfg.filename),
                    pid=m.pid)

    def closeInChild(self):
        if self.takeover is not None:
            self.takeover.close()
        self.server.closeInChild()

    def detach(self):
        self.server.detach()

    def carryAcrossExec(self, environ):
        self.keeper = startKeeper(self, self.manager, environ,
                                  self.manager.cfg.ReloadCheckTimeout)
        Listeners([self.listener]).carryAcrossExec(environ, STATUS_CARRY_ENV)

    def serveFrom(self, manager, loop):
        self.manager = manager
        self.server.attach(loop)

    def close(self):
        if self.keeper is not None:
            self.keeper.kill()
            self.keeper = None
        if self.takeover is not None:
            self.takeover.close()
        self.server.close()
        self.listener.close()
