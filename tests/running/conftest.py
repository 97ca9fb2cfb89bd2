import pytest

from peak_lite.storage import openConnections


@pytest.fixture(autouse=True)
def noConnectionLeftOpen():
    """A test closes the database connections it opened.

    One left open keeps its file descriptor until the garbage collector gets
    round to it, during some later test or never.  It is closed here and the
    test fails.
    """
    before = set(openConnections())
    yield
    left = [conn for conn in openConnections() if conn not in before]
    for conn in left:
        conn.close()
    assert not left, f"database connections left open: {left}"
