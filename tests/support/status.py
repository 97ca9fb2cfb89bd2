"""Talk to a manager's status listener: plain HTTP/1.1 GETs with a deadline, and a parser
for the Prometheus text format good enough to compare numbers."""

import re
import socket

from tests.support.nginx import freePort   # noqa: F401 (re-exported for the status tests)

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def get(address, path, headers=(), timeout=5.0):
    """(status code, {header: value}, body bytes) of one GET; ``address`` is
    (host, port) or a unix socket path."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(address)
        extra = ''.join(f'{name}: {value}\r\n' for name, value in headers)
        s.sendall(f'GET {path} HTTP/1.1\r\nHost: status\r\nConnection: close\r\n{extra}\r\n'
                  .encode())
        data = b''
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    fields = dict(line.split(': ', 1) for line in lines[1:])
    assert int(fields['Content-Length']) == len(body)
    return int(lines[0].split()[1]), fields, body


def parse(text):
    """{(name, frozenset(labels)): value} of a Prometheus text exposition."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        pairs = frozenset(_LABEL.findall(labels or ''))
        samples[(name, pairs)] = float(value)
    return samples


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]
