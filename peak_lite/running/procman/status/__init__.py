"""The manager's status listener: ``StatusListen``, served from the manager's own loop.

- ``server``: a small non-blocking HTTP/1.1 responder;
- ``service``: the endpoints (``/metrics``, ``/healthz``, ``/readyz``, ``/status``, ``/``);
- ``tally``: what the manager counts itself (exited children, spawns, exits, reloads);
- ``keeper``: answers through a restart's exec and the new image's preload
  (``laststate``: what it shows; ``takeover``: the new image's side);
- ``metrics``, ``page``: rendering; ``probes``: accept queues and memory.
"""

from peak_lite.running.procman.status.interfaces import (  # noqa: F401
    IStatusKeeper, IStatusService, ITally)
from peak_lite.running.procman.status.keeper import KeeperProcess  # noqa: F401
from peak_lite.running.procman.status.laststate import LastState  # noqa: F401
from peak_lite.running.procman.status.service import StatusService, openStatus  # noqa: F401
from peak_lite.running.procman.status.tally import Tally, exitReason  # noqa: F401
