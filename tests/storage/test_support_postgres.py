"""The PostgreSQL fixture's discovery of the server binaries."""

import os

from tests.support import postgres


def test_finds_the_real_bin_directory():
    binDir = postgres.findBinDir()
    assert binDir is not None, "CI installs postgresql: the binaries must be found"
    for name in ('initdb', 'postgres', 'pg_ctl'):
        assert os.access(os.path.join(binDir, name), os.X_OK)


def test_reports_none_when_not_installed(monkeypatch):
    monkeypatch.setattr(postgres.shutil, 'which', lambda name: None)
    monkeypatch.setattr(postgres.glob, 'glob', lambda pattern: [])
    assert postgres.findBinDir() is None
