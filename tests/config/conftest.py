import pytest
from zope.component.globalregistry import base as globalRegistry


@pytest.fixture(autouse=True)
def cleanGlobalRegistry(monkeypatch):
    """Each test starts with an empty global site manager and no PEAK_CONFIG."""
    monkeypatch.delenv('PEAK_CONFIG', raising=False)
    globalRegistry.__init__('base')
    yield globalRegistry
    globalRegistry.__init__('base')


@pytest.fixture
def writeIni(tmp_path):
    """``writeIni(name, text)`` writes a file under tmp_path and returns its path."""
    def write(name, text):
        path = tmp_path / name
        path.write_text(text, encoding='utf-8')
        return str(path)
    return write
