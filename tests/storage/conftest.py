import pytest
import transaction

from peak_lite.storage import registry


@pytest.fixture
def tm():
    """A private implicit-mode transaction manager."""
    return transaction.TransactionManager()


@pytest.fixture
def explicitTM():
    """A private explicit-mode transaction manager: no transaction until begin()."""
    return transaction.TransactionManager(explicit=True)


@pytest.fixture(autouse=True)
def closeLeftovers():
    """Close connections a test left open, so no test sees another's."""
    yield
    for conn in registry.openConnections():
        conn.close()
