"""The pool's hand-off queue between real processes: a socket travels with its unread bytes."""

import asyncio
import os
import select
import signal
import socket
import time
import types

from zope.interface.verify import verifyObject

from peak_lite.running.gateways.handoff import HandoffPool
from peak_lite.running.gateways.interfaces import IHandoffPool
from peak_lite.running.gateways.sniff import SniffingConnection
from peak_lite.running.gateways.worker import Worker
from peak_lite.running.mainloop import MainLoop
from tests.gateways.apps import hello
from tests.support import fcgi_client as fc
from tests.support.procs import waitFor


def test_the_pool_provides_its_interface():
    pool = HandoffPool()
    try:
        verifyObject(IHandoffPool, pool)
        assert pool.take() is None
    finally:
        pool.close()


def test_a_connection_handed_to_another_process_keeps_its_unread_bytes():
    pool = HandoffPool()
    client, server = socket.socketpair()
    pid = os.fork()
    if pid == 0:        # the sibling: take one connection, answer what was waiting on it
        status = 1
        try:
            client.close()
            waitFor(lambda: selectReadable(pool.receiver), 10)
            sock, _deadline = pool.take()
            sock.setblocking(True)
            data = sock.recv(100)
            sock.sendall(b'served ' + data + f' in {os.getpid()}'.encode())
            sock.close()
            status = 0
        finally:
            os._exit(status)
    try:
        client.sendall(b'GET /')            # the request waits, unread, in the kernel
        assert pool.give(server)
        server.close()                      # the sender's copy goes; the queue holds one
        client.settimeout(10)
        assert client.recv(100) == f'served GET / in {pid}'.encode()
        assert os.waitpid(pid, 0)[1] == 0
        pid = None
        assert pool.take() is None          # each connection went to exactly one reader
    finally:
        _reap(pid)
        client.close()
        pool.close()


def test_a_silent_connection_travels_with_its_deadline():
    """One accepted whose request has not arrived: the taker learns when to give up on it."""
    pool = HandoffPool()
    client, server = socket.socketpair()
    try:
        assert pool.give(server, deadline=1234.5)
        assert pool.give(client)
        server.close()
        client.close()
        taken = [pool.take(), pool.take()]
        assert [deadline for _sock, deadline in taken] == [1234.5, None]
        for sock, _deadline in taken:
            sock.close()
    finally:
        pool.close()


def test_a_worker_on_its_way_out_leaves_the_queue_without_spinning_on_it():
    """A stopping worker (asked to, or at its request limit) leaves what is queued to a
    sibling; the queue stays readable meanwhile, so it must stop watching it."""
    pool = HandoffPool()
    client, server = socket.socketpair()
    loop = asyncio.new_event_loop()
    adopted = []
    worker = types.SimpleNamespace(stopping=True, adopt=lambda *taken: adopted.append(taken))
    try:
        assert pool.give(server)
        server.close()
        pool.install([worker], loop)
        before = time.process_time()
        loop.run_until_complete(asyncio.sleep(0.3))
        spent = time.process_time() - before
        pool.uninstall()
        assert not adopted
        assert spent < 0.1, f"{spent:.2f}s of CPU in 0.3s: the worker spun on the queue"
        sock, _deadline = pool.take()       # still there, for a sibling
        sock.close()
    finally:
        loop.close()
        client.close()
        pool.close()


def test_the_queue_outlives_the_process_that_filled_it():
    """A worker SIGKILLed after handing a connection over does not take it down."""
    pool = HandoffPool()
    client, server = socket.socketpair()
    pid = os.fork()
    if pid == 0:        # the busy worker: hand the connection over, then hang until killed
        client.close()
        pool.give(server)
        server.close()
        signal.pause()
        os._exit(1)
    server.close()
    try:
        waitFor(lambda: selectReadable(pool.receiver), 10, message="the hand-off")
        _reap(pid)
        pid = None
        sock, deadline = pool.take()
        assert deadline is None
        client.sendall(b'still here')
        sock.setblocking(True)
        sock.settimeout(10)
        assert sock.recv(100) == b'still here'
        sock.close()
    finally:
        _reap(pid)
        client.close()
        pool.close()


def _reap(pid):
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def selectReadable(sock):
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def test_the_last_worker_out_serves_what_waits_in_the_queue(tmp_path):
    """Worker A, starting a request, passed a connection whose request had not arrived yet
    to the queue; then the whole pool was asked to stop.  A worker with no connection of
    its own left must still take what waits there before it exits: a connection left in
    the queue dies with the pool's last process, unread, and its client sees
    ECONNRESET (once in ten reloads under load)."""
    pool = HandoffPool()
    path = str(tmp_path / 'app.sock')
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(8)
    worker = Worker(listener, SniffingConnection, hello, MainLoop(), pool=pool)
    try:
        with fc.FastCGIClient(path) as client:
            server, _ = listener.accept()
            assert pool.give(server, deadline=time.monotonic() + 10)
            server.close()                  # the giver's copy: the queue holds it now
            client.sendRequest(fc.environFor(path='/hello'))
            worker.drain(quiet=0.2, limit=5)
            response = client.readResponse()
            assert (response.status, response.body) == (200, b'Hello, world!\n')
        assert pool.take() is None
    finally:
        worker.close()
        listener.close()
        pool.close()
