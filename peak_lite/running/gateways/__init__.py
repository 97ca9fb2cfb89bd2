"""CGI, FastCGI and HTTP gateways for WSGI applications."""

from peak_lite.running.gateways.appspec import resolveApp  # noqa: F401
from peak_lite.running.gateways.fcgi_server import FastCGIConnection  # noqa: F401
from peak_lite.running.gateways.command import GatewayCommand  # noqa: F401
from peak_lite.running.gateways.http_server import HTTPConnection  # noqa: F401
from peak_lite.running.gateways.interfaces import (  # noqa: F401
    ClientTimeout, ConnectionClosed, GatewayError, IConnection, IConnectionFactory,
    IGatewayApp, IWorker, ProtocolError)
from peak_lite.running.gateways.interpreters import (  # noqa: F401
    CGIInterpreter, FastCGIInterpreter, HTTPInterpreter, WSGIInterpreter)
from peak_lite.running.gateways.worker import NullStatus, Worker  # noqa: F401
