"""Listening sockets, for the process manager and the gateways alike.

- ``specs``: one parser for socket specs (``unix:PATH[:MODE]``, ``HOST:PORT``,
  ``[V6]:PORT``, ``fd:N``) and for ``USER[:GROUP]``, and the shared constants;
- ``listener``: one socket: bind it (a unix socket with its mode and owner set
  before it appears, a stale socket file probed before it is replaced), or
  find the ones a parent handed over;
- ``listeners``: a manager's set: adopted again by full address after an
  exec, handed to children on fds 0, 3, 4...
"""

from peak_lite.running.interfaces import (  # noqa: F401
    IListener, IListeners, ISocketAddress, SocketError)
from peak_lite.running.sockets.listener import (  # noqa: F401
    Listener, inheritedListeners, isListeningSocket, listenOn, listeningSocketOnFd)
from peak_lite.running.sockets.listeners import Listeners  # noqa: F401
from peak_lite.running.sockets.specs import (  # noqa: F401
    BACKLOG, CARRY_ENV, CHILD_ENV, DEFAULT_SOCKET_MODE, SocketAddress, parseAddress,
    parseOwner)
