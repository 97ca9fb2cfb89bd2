import pytest
from hypothesis import HealthCheck, settings

from tests.support.postgres import pgDb, postgresServer  # noqa: F401
from tests.support.procs import Proc, stopAll

# Hypothesis's too_slow health check times example generation, which on this
# suite's 2 shared cores measures the machine's load, not the code under test.
settings.register_profile('suite', suppress_health_check=[HealthCheck.too_slow])
settings.load_profile('suite')


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
