"""Contracts and exceptions of the WSGI gateways."""

from zope.interface import Attribute, Interface

from peak_lite.running.interfaces import RunningError


class GatewayError(RunningError):
    """Base class of errors raised by peak_lite.running.gateways."""


class ProtocolError(GatewayError):
    """A peer broke the wire protocol (FastCGI or HTTP).

    Raised by parsers; the connection that produced it is logged and closed,
    and the worker carries on with its other connections.
    """


class ClientTimeout(GatewayError):
    """A peer sent nothing for longer than the gateway's read timeout."""


class ConnectionClosed(GatewayError):
    """The peer closed the connection in the middle of a request."""


class IConnection(Interface):
    """One accepted connection, driven by an IWorker.

    The worker calls ``dataReceived`` when the socket is readable; the
    connection reads what is there, and when a whole request has started it
    serves it synchronously to the end (reading the rest of the body with a
    bounded timeout) before returning.
    """

    sock = Attribute("The connected socket (non-blocking)")
    closed = Attribute("True once the connection is finished and its socket closed")
    buffered = Attribute(
        "Bytes read from the socket and held for a request not yet served (0 between "
        "requests).  Only an idle connection with nothing buffered may be handed, "
        "unread bytes and all, to another process")

    def dataReceived(data):
        """Consume ``data`` (bytes just read); serve any request it completes.

        Returns nothing.  Never raises for a peer's error: a malformed stream
        is logged and the connection closes itself.
        """

    def close():
        """Close the socket; safe to call twice."""

    def isIdle():
        """True between requests (no request is being read or served)."""


class IConnectionFactory(Interface):
    """Builds the IConnection for a socket just accepted."""

    def __call__(sock, worker):
        """Return an IConnection serving ``sock`` for ``worker`` (an IWorker)."""


class IWorker(Interface):
    """Accepts connections on one listening socket and serves them one request at a time.

    A connection that waits for its next request is idle: the worker keeps
    accepting and serving other connections meanwhile, so kept-alive
    connections never starve the pool.
    """

    app = Attribute("The IWSGIApplication served")
    status = Attribute("The IWorkerStatus told about each request (busy/idle, stopping)")
    readTimeout = Attribute("Seconds a started request may wait for more bytes")

    def start():
        """Register the listener with the main loop's event loop."""

    def acceptNow():
        """Accept what waits on the listener now, from the running loop (a woken standby)."""

    def close():
        """Stop accepting and close the listener's registration and every connection."""

    stopping = Attribute("True once the worker is stopping: each response then closes its "
                         "connection (HTTP says Connection: close)")

    def drain():
        """On a graceful stop: close idle connections, serve requests already waiting."""

    def requestStarted(response=None):
        """Called by a connection as it begins serving a request; returns the busy() context.

        ``response``, the request's WSGIRequest, names the request to the worker
        status and gives it the status code sent, as the context ends.
        """

    serving = Attribute("The connection whose data is being handled now, or None")
    pool = Attribute("The IHandoffPool shared with sibling workers, or None")

    def adopt(sock, deadline=None):
        """Serve ``sock``, a connection a sibling handed over, as one of ours.

        ``deadline``: it was accepted and has sent nothing yet; close it if
        nothing comes by then.
        """

    def release(fd, conn):
        """Forget ``conn`` (on ``fd``), just handed to a sibling, and close only our copy."""


class IHandoffPool(Interface):
    """The queue through which the workers of one pool pass kept-alive connections.

    Made before the workers are forked, so all of them share it.  A busy
    worker gives away each of its other connections that has a request
    waiting (and nothing buffered), and, as a request starts, each
    connection it accepted whose request has not arrived yet; an idle
    worker takes it, unread bytes and all.  Each connection queued goes to exactly one taker, and stays
    queued, owned by no worker, until one takes it.
    """

    def give(sock, deadline=None):
        """Queue ``sock``; True if it went (the caller then closes its copy), False if not.

        ``deadline`` marks a connection accepted whose request has not
        arrived: the taker closes it if nothing comes by then.
        """

    def take():
        """``(sock, deadline)`` of a queued connection, or None when the queue is empty.

        Never blocks.  ``deadline`` is None for a kept-alive connection.
        """

    def install(workers, loop):
        """In a worker process: take queued connections while idle, give while busy."""

    def uninstall():
        """Undo install(): stop taking and giving (before a drain, or at exit)."""

    def requestStarted(worker):
        """``worker`` begins a request.  On the fast path: no system call."""

    def requestEnded():
        """The request begun last has ended."""


class IGatewayApp(Interface):
    """What the gateway shortcuts return: a ready-to-serve, rerunnable CGI program.

    It provides ICmdLineApp (``run()`` picks the mode: FastCGI or HTTP on a
    listening fd 0 or a given socket, else one plain CGI request) and
    IRerunnableCGI.
    """

    app = Attribute("The IWSGIApplication, built eagerly")
