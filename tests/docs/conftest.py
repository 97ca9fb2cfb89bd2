import pytest

from tests.docs.runners import DemoCopy


@pytest.fixture
def demo(procs):
    """A copy of the project serving the demo through its own `make run`."""
    copy = DemoCopy(procs)
    try:
        yield copy.start()
        copy.stop()
    finally:
        copy.remove()
