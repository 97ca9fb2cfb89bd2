"""The kernel's view the status listener reports: accept queues and memory, on real sockets."""

import os
import socket

from peak_lite.running.procman.status.probes import MEMORY_CACHE, MemoryReader, queueLengths


def test_accept_queue_length_and_limit_of_tcp_and_unix_listeners(tmp_path):
    tcp = socket.socket()
    tcp.bind(('127.0.0.1', 0))
    tcp.listen(7)
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(tmp_path / 's'))
    unix.listen(9)
    waiting = [socket.create_connection(tcp.getsockname())]
    for _ in range(2):
        c = socket.socket(socket.AF_UNIX)
        c.connect(str(tmp_path / 's'))
        waiting.append(c)
    try:
        assert [(n, m) for _, n, m in queueLengths([tcp, unix])] == [(1, 7), (2, 9)]
        tcp.accept()[0].close()
        unix.accept()[0].close()
        assert [(n, m) for _, n, m in queueLengths([tcp, unix])] == [(0, 7), (1, 9)]
    finally:
        for s in waiting + [tcp, unix]:
            s.close()


def test_memory_comes_from_smaps_rollup_and_is_cached_briefly():
    now = [100.0]
    reader = MemoryReader(clock=lambda: now[0])
    first = reader.read(os.getpid())
    assert 0 < first['uss'] <= first['rss'] and 0 < first['pss'] <= first['rss']
    ballast = bytearray(32 << 20)            # touched: 32 MB more, all private
    ballast[::4096] = b'x' * len(ballast[::4096])
    assert reader.read(os.getpid()) is first  # within MEMORY_CACHE: not read again
    now[0] += MEMORY_CACHE
    assert reader.read(os.getpid())['uss'] >= first['uss'] + (30 << 20)
    assert reader.read(2 ** 22 + 12345) is None                # no such process
    reader.forget([])
    assert reader.cache == {}
    del ballast
