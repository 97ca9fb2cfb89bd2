import pytest
from zope.component.globalregistry import base as globalRegistry


@pytest.fixture(autouse=True)
def cleanGlobalRegistry():
    """Each test starts and ends with an empty global site manager."""
    globalRegistry.__init__('base')
    yield globalRegistry
    globalRegistry.__init__('base')
