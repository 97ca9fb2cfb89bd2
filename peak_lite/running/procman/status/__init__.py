"""The manager's status listener: ``StatusListen``, served from the manager's own loop.

- ``server``: a small non-blocking HTTP/1.1 responder;
- ``service``: the endpoints (``/metrics``, ``/healthz``, ``/readyz``, ``/status``, ``/``);
- ``tally``: what the manager counts itself (exited children, spawns, exits, reloads);
- ``metrics``, ``page``: rendering; ``probes``: accept queues and memory.
"""

from peak_lite.running.procman.status.interfaces import IStatusService, ITally  # noqa: F401
from peak_lite.running.procman.status.service import StatusService, openStatus  # noqa: F401
from peak_lite.running.procman.status.tally import Tally, exitReason  # noqa: F401
