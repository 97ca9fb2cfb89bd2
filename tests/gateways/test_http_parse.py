"""RequestReader on its own: arbitrary bytes and arbitrary splits (hypothesis)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peak_lite.running.gateways.http_parse import END, Refusal, Request, RequestReader

# Each test runs with the compiled loops (speedups.py) and with pure Python alone.
pytestmark = pytest.mark.usefixtures('speedupsOnAndOff')

VALID = (b'POST /a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello'
         b'GET http://example.com/b HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nX-A: 2\r\n\r\n'
         b'PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n'
         b'3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n'
         b'GET /d HTTP/1.0\r\n\r\n')


def feedAll(pieces):
    reader = RequestReader()
    for piece in pieces:
        reader.feed(piece)
    return reader


def summary(queue):
    """Requests as environ dicts, bodies joined, so splits do not matter."""
    out, body = [], b''
    for item in queue:
        if type(item) is bytes:
            body += item
            continue
        if body:
            out.append(body)
            body = b''
        if type(item) is Request:
            out.append(item.environ())
        elif item is END:
            out.append('END')
        else:
            out.append((item.status, str(item)))
    return out


def splits(data):
    return st.lists(st.integers(0, len(data)), max_size=12).map(
        lambda cuts: [data[a:b] for a, b in zip([0] + sorted(cuts), sorted(cuts) + [len(data)])])


@settings(max_examples=300, deadline=None)
@given(pieces=splits(VALID))
def test_a_valid_stream_parses_the_same_however_it_is_split(pieces):
    whole = summary(feedAll([VALID]).queue)
    assert summary(feedAll(pieces).queue) == whole
    paths = [item['PATH_INFO'] for item in whole if type(item) is dict]
    assert paths == ['/a', '/b', '/c', '/d']
    assert whole[1] == b'hello' and whole[6] == b'abcde'
    assert whole[3]['HTTP_X_A'] == '1,2' and whole[3]['HTTP_HOST'] == 'example.com'


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=600), cut=st.integers(0, 600))
def test_arbitrary_bytes_give_only_queue_items_and_stop_after_a_refusal(data, cut):
    reader = feedAll([data[:cut], data[cut:]])
    items = list(reader.queue)
    for i, item in enumerate(items):
        assert type(item) in (Request, bytes) or item is END or isinstance(item, Refusal)
        if isinstance(item, Refusal):
            assert i == len(items) - 1 and reader.finished
            assert item.status in (400, 405, 414, 431, 505)
