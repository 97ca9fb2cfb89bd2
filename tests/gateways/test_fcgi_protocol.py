"""Records and name-value pairs (pure functions), including fuzzing of the parser.

Every test runs twice: with the compiled loops (speedups.py) and with the
pure-Python code alone, which is what an install without a C compiler gets.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peak_lite.running.gateways import fcgi_protocol as fp
from peak_lite.running.gateways.interfaces import GatewayError, ProtocolError
from tests.support import fcgi_client as fc

pytestmark = pytest.mark.usefixtures('speedupsOnAndOff')


def test_records_are_padded_to_eight_and_match_an_independent_encoder():
    for n in (0, 1, 7, 8, 9, 1000):
        data = fp.encodeRecord(fp.FCGI_STDOUT, 3, b'x' * n)
        assert len(data) % 8 == 0
        assert data == fc.record(fc.STDOUT, 3, b'x' * n)


def test_oversized_record_content_is_refused():
    with pytest.raises(ValueError, match='65535'):
        fp.encodeRecord(fp.FCGI_STDOUT, 1, b'x' * 65536)


def test_streams_are_split_without_padding():
    data = fp.encodeStream(fp.FCGI_STDOUT, 1, b'y' * 200000)
    records = fp.RecordParser().feed(data)
    assert b''.join(c for _, _, c in records) == b'y' * 200000
    assert all(len(c) <= 0xFFF8 for _, _, c in records)
    assert fp.encodeStream(fp.FCGI_STDOUT, 1, b'') == b''


def test_parser_is_incremental_byte_by_byte():
    data = (fp.encodeBeginRequest(1, flags=fp.FCGI_KEEP_CONN)
            + fp.encodeRecord(fp.FCGI_PARAMS, 1, fp.encodeNameValues([('A', 'b' * 300)]))
            + fp.encodeRecord(fp.FCGI_PARAMS, 1))
    parser = fp.RecordParser()
    records = []
    for i in range(len(data)):
        records += parser.feed(data[i:i + 1])
    assert [r[0] for r in records] == [fp.FCGI_BEGIN_REQUEST, fp.FCGI_PARAMS, fp.FCGI_PARAMS]
    assert fp.decodeBeginRequest(records[0][2]) == (fp.FCGI_RESPONDER, fp.FCGI_KEEP_CONN)
    assert fp.decodeNameValues(records[1][2]) == [(b'A', b'b' * 300)]
    assert parser.pending == 0


def test_wrong_version_is_a_protocol_error():
    with pytest.raises(ProtocolError, match='version 2'):
        fp.RecordParser().feed(b'\x02\x01\x00\x01\x00\x00\x00\x00')
    assert issubclass(ProtocolError, GatewayError)


def test_name_values_long_and_short_lengths_round_trip():
    pairs = [(b'SHORT', b'v'), (b'L' * 200, b'w' * 70000), (b'EMPTY', b'')]
    assert fp.decodeNameValues(fp.encodeNameValues(pairs)) == pairs
    assert fc.parseNameValues(fp.encodeNameValues(pairs)) == dict(pairs)


@pytest.mark.parametrize('data', [b'\x05', b'\x80\x00', b'\x05\x05abc', b'\x01\x80\x00\x00'])
def test_truncated_name_values_are_protocol_errors(data):
    with pytest.raises(ProtocolError, match='truncated|runs past'):
        fp.decodeNameValues(data)


def test_too_many_pairs_are_refused():
    data = fp.encodeNameValues([(f'N{i}', 'v') for i in range(20)])
    with pytest.raises(ProtocolError, match='more than 10'):
        fp.decodeNameValues(data, maxPairs=10)


def test_params_decode_straight_to_an_environ():
    pairs = [(b'SHORT', b'v'), (b'L' * 200, b'w' * 70000), (b'LATIN', 'caf\xe9'.encode('latin-1')),
             (b'SHORT', b'last wins'), (b'EMPTY', b'')]
    environ = fp.decodeParams(fp.encodeNameValues(pairs[:3]) + fp.encodeNameValues(pairs[3:]))
    assert environ == {'SHORT': 'last wins', 'L' * 200: 'w' * 70000, 'LATIN': 'caf\xe9',
                       'EMPTY': ''}
    assert fp.decodeParams(b'') == {}


@pytest.mark.parametrize('data', [b'\x05', b'\x80\x00', b'\x05\x05abc', b'\x01\x80\x00\x00'])
def test_truncated_params_are_protocol_errors(data):
    with pytest.raises(ProtocolError, match='truncated|runs past'):
        fp.decodeParams(data)


def test_too_many_params_are_refused():
    data = fp.encodeNameValues([(f'N{i}', 'v') for i in range(20)])
    with pytest.raises(ProtocolError, match='more than 10'):
        fp.decodeParams(data, maxPairs=10)


def test_begin_request_of_the_wrong_size():
    with pytest.raises(ProtocolError, match='expected 8'):
        fp.decodeBeginRequest(b'\x00\x01')


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_fuzz_parser_raises_only_protocol_errors(chunks):
    parser = fp.RecordParser()
    try:
        for chunk in chunks:
            for rtype, reqId, content in parser.feed(chunk):
                assert 0 <= rtype <= 255 and 0 <= reqId <= 0xFFFF
                try:
                    fp.decodeNameValues(content)
                except ProtocolError:
                    pass
    except ProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=200), st.binary(max_size=300)), max_size=5))
def test_fuzz_name_values_round_trip(pairs):
    assert fp.decodeNameValues(fp.encodeNameValues(pairs)) == pairs


@pytest.mark.parametrize('data', [b'', b'x', b'12345678', b'y' * fp.STREAM_CHUNK])
def test_last_output_is_the_records_of_its_parts(data):
    expected = (fp.encodeStream(fp.FCGI_STDOUT, 7, data) + fp.encodeRecord(fp.FCGI_STDOUT, 7)
                + fp.encodeEndRequest(7, 1))
    assert fp.encodeLastOutput(7, data, 1) == expected
