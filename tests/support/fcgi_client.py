"""A tiny FastCGI client speaking raw records, for tests.

    with FastCGIClient('/tmp/x.sock') as c:             # or ('127.0.0.1', port)
        r = c.request({'REQUEST_METHOD': 'GET', 'PATH_INFO': '/'}, body=b'')
        r.status, r.headers, r.body, r.stderr, r.appStatus, r.protocolStatus

``sendRecord``/``sendRaw``/``readRecord`` give access to single records for
protocol tests.  Records are encoded here independently of the server's code.
"""

import socket
import struct

BEGIN_REQUEST, ABORT_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR, DATA = range(1, 9)
GET_VALUES, GET_VALUES_RESULT, UNKNOWN_TYPE = 9, 10, 11
RESPONDER, KEEP_CONN = 1, 1
REQUEST_COMPLETE, CANT_MPX_CONN, OVERLOADED, UNKNOWN_ROLE = range(4)


def record(rtype, reqId, content=b'', padding=None):
    if padding is None:
        padding = -len(content) % 8
    return (struct.pack('!BBHHBx', 1, rtype, reqId, len(content), padding)
            + content + b'\0' * padding)


def _length(n):
    return bytes((n,)) if n < 128 else struct.pack('!L', n | 0x80000000)


def nameValues(pairs):
    out = b''
    for name, value in dict(pairs).items():
        name = name.encode('latin-1') if isinstance(name, str) else name
        value = value.encode('latin-1') if isinstance(value, str) else value
        out += _length(len(name)) + _length(len(value)) + name + value
    return out


def parseNameValues(data):
    pairs, pos = {}, 0
    while pos < len(data):
        lengths = []
        for _ in range(2):
            if data[pos] & 0x80:
                lengths.append(struct.unpack('!L', data[pos:pos + 4])[0] & 0x7FFFFFFF)
                pos += 4
            else:
                lengths.append(data[pos])
                pos += 1
        n, v = lengths
        pairs[data[pos:pos + n]] = data[pos + n:pos + n + v]
        pos += n + v
    return pairs


def stream(rtype, reqId, data, chunk=65535):
    out = [record(rtype, reqId, data[i:i + chunk]) for i in range(0, len(data), chunk)]
    return b''.join(out) + record(rtype, reqId)


class Response:
    def __init__(self):
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.appStatus = self.protocolStatus = None

    def parse(self):
        head, _, self.body = bytes(self.stdout).partition(b'\r\n\r\n')
        self.headers = {}
        for line in head.split(b'\r\n'):
            if line:
                name, _, value = line.partition(b':')
                self.headers[name.decode().strip().lower()] = value.decode().strip()
        self.status = int(self.headers.get('status', '200').split()[0])
        return self


def environFor(method='GET', path='/', query='', body=b'', **extra):
    env = {'REQUEST_METHOD': method, 'SCRIPT_NAME': '', 'PATH_INFO': path,
           'QUERY_STRING': query, 'SERVER_NAME': 'localhost', 'SERVER_PORT': '80',
           'SERVER_PROTOCOL': 'HTTP/1.1', 'REMOTE_ADDR': '127.0.0.1'}
    if body:
        env['CONTENT_LENGTH'] = str(len(body))
        env['CONTENT_TYPE'] = 'application/octet-stream'
    env.update(extra)
    return env


class FastCGIClient:
    def __init__(self, address, timeout=10.0):
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self._buf = b''

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def sendRaw(self, data):
        self.sock.sendall(data)

    def sendRecord(self, rtype, reqId, content=b''):
        self.sendRaw(record(rtype, reqId, content))

    def _fill(self, n):
        while len(self._buf) < n:
            data = self.sock.recv(65536)
            if not data:
                return False
            self._buf += data
        return True

    def readRecord(self):
        """The next ``(type, requestId, content)``, or None at end of file."""
        if not self._fill(8):
            return None
        _v, rtype, reqId, clen, plen = struct.unpack('!BBHHBx', self._buf[:8])
        if not self._fill(8 + clen + plen):
            return None
        content = self._buf[8:8 + clen]
        self._buf = self._buf[8 + clen + plen:]
        return rtype, reqId, content

    def isClosed(self):
        """True if the server closed the connection (reads EOF, nothing pending)."""
        try:
            return self.sock.recv(1) == b''
        except ConnectionResetError:
            return True

    def beginRequest(self, reqId=1, keepConn=False, role=RESPONDER):
        self.sendRecord(BEGIN_REQUEST, reqId,
                        struct.pack('!HB5x', role, KEEP_CONN if keepConn else 0))

    def sendRequest(self, params, body=b'', reqId=1, keepConn=False):
        self.sendRaw(record(BEGIN_REQUEST, reqId,
                            struct.pack('!HB5x', RESPONDER, KEEP_CONN if keepConn else 0))
                     + stream(PARAMS, reqId, nameValues(params))
                     + stream(STDIN, reqId, body))

    def readResponse(self, reqId=1):
        resp = Response()
        while True:
            rec = self.readRecord()
            if rec is None:
                raise EOFError("the server closed the connection before END_REQUEST")
            rtype, rid, content = rec
            assert rid == reqId, f"record for request {rid}, expected {reqId}"
            if rtype == STDOUT:
                resp.stdout += content
            elif rtype == STDERR:
                resp.stderr += content
            elif rtype == END_REQUEST:
                resp.appStatus, resp.protocolStatus = struct.unpack('!LB3x', content)
                return resp.parse()
            else:
                raise AssertionError(f"unexpected record type {rtype}")

    def request(self, params, body=b'', reqId=1, keepConn=False):
        self.sendRequest(params, body, reqId, keepConn)
        return self.readResponse(reqId)

    def getValues(self, names):
        self.sendRecord(GET_VALUES, 0, nameValues({n: '' for n in names}))
        rtype, reqId, content = self.readRecord()
        assert (rtype, reqId) == (GET_VALUES_RESULT, 0), (rtype, reqId)
        return {k.decode(): v.decode() for k, v in parseNameValues(content).items()}
