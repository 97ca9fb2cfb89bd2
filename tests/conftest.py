import pytest

from tests.support.postgres import pgDb, postgresServer  # noqa: F401
from tests.support.procs import Proc, stopAll


@pytest.fixture
def procs():
    """Start processes with ``procs(argv, **kw)``; all are killed and checked at teardown."""
    started = []

    def start(argv, **kw):
        p = Proc(argv, **kw)
        started.append(p)
        return p

    yield start
    stopAll(started)
