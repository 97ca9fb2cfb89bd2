"""Socket specs, fd 0 detection, app resolution and the shortcut factories."""

import io
import os
import socket

import pytest
from zope.component import getGlobalSiteManager
from zope.interface import implementer
from zope.interface.verify import verifyObject

from peak_lite.running.gateways import (
    CGIInterpreter, FastCGIInterpreter, GatewayCommand, HTTPInterpreter, WSGIInterpreter,
    resolveApp)
from peak_lite.running.gateways.interfaces import IGatewayApp
from peak_lite.running.interfaces import (
    ICmdLineApp, ICmdLineAppFactory, IRerunnableCGI, IWaitingWork, IWSGIApplication,
    InvocationError, LoadError)
from peak_lite.running.sockets import (
    SocketError, listenOn, listeningSocketOnFd, parseAddress)
from tests.gateways import apps


@pytest.mark.parametrize('spec, expected', [
    ('unix:/run/app.sock', (socket.AF_UNIX, '/run/app.sock')),
    ('127.0.0.1:9000', (socket.AF_INET, ('127.0.0.1', 9000))),
    (':9000', (socket.AF_INET, ('0.0.0.0', 9000))),
    ('[::1]:9000', (socket.AF_INET6, ('::1', 9000))),
])
def test_socket_specs(spec, expected):
    address = parseAddress(spec)
    assert (address.socketFamily, address.sockaddr) == expected


@pytest.mark.parametrize('spec', ['', 'unix:', 'host', 'host:port', '::1:80', '[::1]80',
                                  'h:70000'])
def test_bad_socket_specs_say_what_is_expected(spec):
    with pytest.raises(ValueError, match='expected|empty|IPv6'):
        parseAddress(spec)


def test_listen_on_unix_replaces_a_stale_socket_file(tmp_path):
    path = tmp_path / 's.sock'
    for _ in range(2):
        sock = listenOn(f'unix:{path}')
        sock.close()
    (tmp_path / 'plain').write_text('not a socket')
    with pytest.raises(SocketError, match='is not a socket'):
        listenOn(f"unix:{tmp_path / 'plain'}")


def test_listening_socket_on_fd_detection(tmp_path):
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    unlistening = socket.socket()
    r, w = os.pipe()
    try:
        assert listeningSocketOnFd(listener.fileno()) is None     # bound, not listening
        listener.listen(1)
        found = listeningSocketOnFd(listener.fileno())
        assert found is not None and found.fileno() != listener.fileno()
        found.close()
        assert listener.fileno() >= 0
        assert listeningSocketOnFd(unlistening.fileno()) is None
        before = len(os.listdir('/proc/self/fd'))
        assert listeningSocketOnFd(r) is None
        assert len(os.listdir('/proc/self/fd')) == before     # nothing leaked
    finally:
        listener.close()
        unlistening.close()
        os.close(r)
        os.close(w)


def test_resolve_a_function_and_a_component_class():
    assert resolveApp(None, 'tests.gateways.apps:hello') is apps.hello
    app = resolveApp(None, 'tests.gateways.apps:HelloComponent')
    assert isinstance(app, apps.HelloComponent) and app.isAssembled()


def test_resolve_adapts_to_iwsgiapplication():
    @implementer(IWSGIApplication)
    class Adapted:
        def __init__(self, context):
            self.context = context

        def __call__(self, environ, start_response):
            return []
    gsm = getGlobalSiteManager()
    gsm.registerAdapter(Adapted, (NotCallable,), IWSGIApplication)
    try:
        app = resolveApp(None, 'tests.gateways.test_setup:NOT_CALLABLE')
        assert isinstance(app, Adapted)
    finally:
        gsm.unregisterAdapter(Adapted, (NotCallable,), IWSGIApplication)


class NotCallable:
    pass


NOT_CALLABLE = NotCallable()


@pytest.mark.parametrize('spec, message', [
    ('tests.gateways.nothere:app', 'no module'),
    ('tests.gateways.apps:missing', 'missing'),
    ('tests.gateways.test_setup:NOT_CALLABLE', 'not a WSGI application'),
])
def test_resolve_errors_are_load_errors(spec, message):
    with pytest.raises(LoadError, match=message):
        resolveApp(None, spec)


def test_factories_build_ready_commands():
    for name, factory in (('CGI', CGIInterpreter), ('WSGI', WSGIInterpreter),
                          ('HTTP', HTTPInterpreter)):
        verifyObject(ICmdLineAppFactory, factory)
        cmd = factory(None, argv=[name, 'tests.gateways.apps:hello'])
        assert isinstance(cmd, GatewayCommand) and cmd.app is apps.hello
        for iface in (ICmdLineApp, IRerunnableCGI, IGatewayApp, IWaitingWork):
            verifyObject(iface, cmd)
        assert cmd.waitingFds() == [cmd.pool.receiver.fileno()]
    cmd = FastCGIInterpreter(None, argv=['FastCGI', '--read-timeout=2', 'unix:/tmp/x',
                                         'tests.gateways.apps:hello'])
    assert (cmd.socket, cmd.readTimeout) == ('unix:/tmp/x', 2.0)


@pytest.mark.parametrize('argv, message', [
    (['CGI'], 'missing argument'), (['FastCGI', 'tests.gateways.apps:hello'], 'expected'),
    (['CGI', '--bogus=1', 'x:y'], 'unknown option'),
    (['CGI', '--read-timeout=no', 'x:y'], 'expects seconds'),
    (['CGI', '--read-timeout=0', 'x:y'], 'expects seconds'),
])
def test_misuse_is_an_invocation_error(argv, message):
    factory = {'CGI': CGIInterpreter, 'FastCGI': FastCGIInterpreter}[argv[0]]
    with pytest.raises(InvocationError, match=message):
        factory(None, argv=argv)


def test_http_without_a_listening_socket_is_an_invocation_error():
    r, w = os.pipe()
    saved = os.dup(0)
    try:
        os.dup2(r, 0)
        cmd = HTTPInterpreter(None, argv=['HTTP', 'tests.gateways.apps:hello'])
        with pytest.raises(InvocationError, match='not a listening socket'):
            cmd.run()
    finally:
        os.dup2(saved, 0)
        for fd in (saved, r, w):
            os.close(fd)


def test_run_cgi_is_rerunnable():
    cmd = CGIInterpreter(None, argv=['CGI', 'tests.gateways.apps:echo'])
    for i in range(2):
        out = io.BytesIO()
        env = {'REQUEST_METHOD': 'GET', 'PATH_INFO': f'/{i}', 'SERVER_NAME': 'x',
               'SERVER_PORT': '80', 'SERVER_PROTOCOL': 'HTTP/1.0'}
        assert cmd.runCGI(io.BytesIO(), out, io.StringIO(), env) == 0
        assert out.getvalue().startswith(b'Status: 200 OK') and f'path=/{i}'.encode() in \
            out.getvalue()
