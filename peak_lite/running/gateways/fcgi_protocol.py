"""FastCGI 1.0 wire format: records, name-value pairs and their bounds.

Pure functions and a small incremental parser; no sockets here.  See the
FastCGI specification, sections 3 (records) and 8 (types and constants).

The loops that run once per record and once per parameter, and the framing
of a response's end, have compiled twins (speedups.py).  They only answer
for well-formed input: on anything else the Python code here looks at the
same bytes and raises, so results and errors are the same with them or
without them.
"""

import struct

from peak_lite.running.gateways import speedups
from peak_lite.running.gateways.interfaces import ProtocolError

FCGI_VERSION_1 = 1
FCGI_HEADER_LEN = 8
FCGI_MAX_CONTENT = 0xFFFF
# The largest record content with no padding: what a stream is cut into.
STREAM_CHUNK = 0xFFF8

FCGI_BEGIN_REQUEST = 1
FCGI_ABORT_REQUEST = 2
FCGI_END_REQUEST = 3
FCGI_PARAMS = 4
FCGI_STDIN = 5
FCGI_STDOUT = 6
FCGI_STDERR = 7
FCGI_DATA = 8
FCGI_GET_VALUES = 9
FCGI_GET_VALUES_RESULT = 10
FCGI_UNKNOWN_TYPE = 11
FCGI_MAXTYPE = FCGI_UNKNOWN_TYPE

FCGI_NULL_REQUEST_ID = 0
FCGI_KEEP_CONN = 1

FCGI_RESPONDER = 1
FCGI_AUTHORIZER = 2
FCGI_FILTER = 3

FCGI_REQUEST_COMPLETE = 0
FCGI_CANT_MPX_CONN = 1
FCGI_OVERLOADED = 2
FCGI_UNKNOWN_ROLE = 3

_HEADER = struct.Struct('!BBHHBx')
_BEGIN_BODY = struct.Struct('!HB5x')
_END_BODY = struct.Struct('!LB3x')
_UNKNOWN_BODY = struct.Struct('!B7x')

# Padding to the next multiple of 8, precomputed.
_PADDING = [b'\0' * ((8 - n % 8) % 8) for n in range(8)]


def encodeRecord(recordType, requestId, content=b''):
    """One record: header, ``content`` (at most 65535 bytes) and padding to 8."""
    n = len(content)
    if n > FCGI_MAX_CONTENT:
        raise ValueError(f"FastCGI record content is {n} bytes; the maximum is {FCGI_MAX_CONTENT}")
    pad = _PADDING[n & 7]
    return b''.join((_HEADER.pack(FCGI_VERSION_1, recordType, requestId, n, len(pad)),
                     content, pad))


def encodeStream(recordType, requestId, data, chunk=STREAM_CHUNK):
    """``data`` as a run of records of at most ``chunk`` bytes each (no terminator).

    ``chunk`` defaults to the largest multiple of 8 that fits, so no padding
    is ever written.  An empty ``data`` gives an empty result; the empty
    record that ends a stream is ``encodeRecord(recordType, requestId)``.
    """
    out = []
    view = memoryview(data)
    for start in range(0, len(view), chunk):
        out.append(encodeRecord(recordType, requestId, view[start:start + chunk]))
    return b''.join(out)


def encodeLastOutput(requestId, data, appStatus=0):
    """The end of a response in one piece: ``data`` (at most STREAM_CHUNK bytes) as one
    FCGI_STDOUT record unless empty, the empty one that ends the stream, and
    FCGI_END_REQUEST."""
    compiled = speedups.compiled
    if compiled is not None:
        out = compiled.lastOutput(requestId, data, appStatus)
        if out is not None:
            return out
    tail = (_HEADER.pack(FCGI_VERSION_1, FCGI_STDOUT, requestId, 0, 0)
            + _HEADER.pack(FCGI_VERSION_1, FCGI_END_REQUEST, requestId, 8, 0)
            + _END_BODY.pack(appStatus, FCGI_REQUEST_COMPLETE))
    n = len(data)
    if not n:
        return tail
    pad = _PADDING[n & 7]
    return b''.join((_HEADER.pack(FCGI_VERSION_1, FCGI_STDOUT, requestId, n, len(pad)),
                     data, pad, tail))


def encodeBeginRequest(requestId, role=FCGI_RESPONDER, flags=0):
    return encodeRecord(FCGI_BEGIN_REQUEST, requestId, _BEGIN_BODY.pack(role, flags))


def decodeBeginRequest(content):
    """Return ``(role, flags)`` of a BEGIN_REQUEST body."""
    if len(content) != _BEGIN_BODY.size:
        raise ProtocolError(
            f"FCGI_BEGIN_REQUEST body is {len(content)} bytes; expected {_BEGIN_BODY.size}")
    return _BEGIN_BODY.unpack(content)


def encodeEndRequest(requestId, appStatus=0, protocolStatus=FCGI_REQUEST_COMPLETE):
    return encodeRecord(FCGI_END_REQUEST, requestId, _END_BODY.pack(appStatus, protocolStatus))


def decodeEndRequest(content):
    """Return ``(appStatus, protocolStatus)`` of an END_REQUEST body."""
    return _END_BODY.unpack(content)


def encodeUnknownType(recordType):
    return encodeRecord(FCGI_UNKNOWN_TYPE, FCGI_NULL_REQUEST_ID, _UNKNOWN_BODY.pack(recordType))


def _encodeLength(n):
    if n < 0x80:
        return bytes((n,))
    if n > 0x7FFFFFFF:
        raise ValueError(f"FastCGI name or value of {n} bytes is too long")
    return struct.pack('!L', n | 0x80000000)


def encodeNameValues(pairs):
    """Encode an iterable of ``(name, value)`` bytes pairs (str is taken as latin-1)."""
    out = []
    for name, value in pairs:
        if isinstance(name, str):
            name = name.encode('latin-1')
        if isinstance(value, str):
            value = value.encode('latin-1')
        out += (_encodeLength(len(name)), _encodeLength(len(value)), name, value)
    return b''.join(out)


def _longLength(data, pos, end):
    """The 4-byte length that starts at ``pos`` (its high bit set)."""
    if pos + 4 > end:
        raise ProtocolError(f"FastCGI name-value length truncated at byte {pos} of {end}")
    return int.from_bytes(data[pos:pos + 4], 'big') & 0x7FFFFFFF


def _splitNameValues(data, text, maxPairs):
    """Names and values of ``data`` as a flat list of slices of ``text``.

    ``text`` is ``data`` itself, or its latin-1 decoding (the same length):
    lengths are read from ``data``, names and values are cut from ``text``.
    Nearly every pair has two one-byte lengths: that case costs one test.
    The count is checked once, at the end (the list is already bounded by
    the size of ``data``).
    """
    out = []
    append = out.append
    pos = 0
    end = len(data)
    try:
        while pos < end:
            nlen = data[pos]
            vlen = data[pos + 1]
            if (nlen | vlen) & 0x80:
                nlen, vlen, pos = _longLengths(data, pos, end)
            else:
                pos += 2
            mid = pos + nlen
            stop = mid + vlen
            if stop > end:
                raise ProtocolError(
                    f"FastCGI name-value pair of {nlen}+{vlen} bytes at byte {pos} runs past"
                    f" the end of the {end}-byte stream")
            append(text[pos:mid])
            append(text[mid:stop])
            pos = stop
    except IndexError:
        raise ProtocolError(f"FastCGI name-value pair truncated at byte {pos} of {end}") from None
    if len(out) > 2 * maxPairs:
        raise ProtocolError(f"more than {maxPairs} FastCGI parameters; refusing the request")
    return out


def _longLengths(data, pos, end):
    """``(nameLength, valueLength, position after them)`` when either has 4 bytes."""
    nlen, pos = _length(data, pos, end)
    if pos >= end:
        raise ProtocolError(f"FastCGI name-value pair truncated at byte {pos} of {end}")
    vlen, pos = _length(data, pos, end)
    return nlen, vlen, pos


def _length(data, pos, end):
    """The length of 1 or 4 bytes at ``pos``, and the position after it."""
    if data[pos] & 0x80:
        return _longLength(data, pos, end), pos + 4
    return data[pos], pos + 1


def decodeNameValues(data, maxPairs=1000):
    """Decode name-value pairs into a list of ``(name, value)`` bytes.

    Raises ProtocolError on a truncated pair, or when there are more than
    ``maxPairs`` pairs.
    """
    flat = iter(_splitNameValues(data, bytes(data), maxPairs))
    return list(zip(flat, flat))


def decodeParams(data, maxPairs=1000):
    """Decode name-value pairs into a dict of str (latin-1), as for a CGI environ.

    A name given twice keeps its last value.  Raises ProtocolError as
    ``decodeNameValues`` does.
    """
    compiled = speedups.compiled
    if compiled is not None:
        environ = compiled.splitParams(data, maxPairs)
        if environ is not None:
            return environ
    flat = iter(_splitNameValues(data, str(data, 'latin-1'), maxPairs))
    return dict(zip(flat, flat))


def _splitRecords(data):
    """``(records, position)``: every whole record of version 1 from the start of
    ``data`` as ``(type, requestId, content)``, and where the first one not taken
    starts (an incomplete record, or a header of another version)."""
    records = []
    pos = 0
    end = len(data)
    unpack = _HEADER.unpack_from
    while end - pos >= FCGI_HEADER_LEN:
        version, rtype, reqId, clen, plen = unpack(data, pos)
        stop = pos + FCGI_HEADER_LEN + clen
        if version != FCGI_VERSION_1 or stop + plen > end:
            break
        records.append((rtype, reqId, bytes(data[pos + FCGI_HEADER_LEN:stop])))
        pos = stop + plen
    return records, pos


class RecordParser:
    """Split a byte stream into ``(type, requestId, content)`` records, incrementally.

    ``feed(data)`` returns the list of records completed so far.  A header
    with a version other than 1 raises ProtocolError: past that point the
    stream cannot be resynchronised.  ``pending`` is the number of bytes held
    for an incomplete record.
    """

    def __init__(self):
        self._buf = bytearray()

    @property
    def pending(self):
        return len(self._buf)

    def feed(self, data):
        buf = self._buf
        if buf:
            buf += data
            data = buf
        compiled = speedups.compiled
        records, pos = (_splitRecords if compiled is None else compiled.splitRecords)(data)
        if len(data) - pos >= FCGI_HEADER_LEN and data[pos] != FCGI_VERSION_1:
            raise ProtocolError(
                f"FastCGI record at stream offset {pos} has version {data[pos]}; expected 1"
                " (is the peer speaking FastCGI?)")
        if data is buf:
            del buf[:pos]
        else:
            self._buf = bytearray(data[pos:])
        return records
