import os.path

import pytest

from peak_lite.util.imports import importObject, importString, lazyImport
from peak_lite.util.interfaces import ImportStringError


def test_colon_and_dotted_forms():
    assert importString('os.path:join') is os.path.join
    assert importString('os.path.join') is os.path.join
    assert importString('os:path.join') is os.path.join
    assert importObject(len) is len
    assert lazyImport('os.path:join')() is os.path.join


@pytest.mark.parametrize('spec, message', [
    ('os.path:nope', "cannot import 'os.path:nope': 'os.path' has no attribute 'nope'"),
    ('os:path.nope', "'os:path' has no attribute 'nope'"),
    ('no_such_mod_x:obj', "no module named 'no_such_mod_x'"),
    ('os.nope.deeper', "'os' has no attribute 'nope'"),
    (':obj', "the module part before ':' is empty"),
    ('', "non-empty string"),
])
def test_errors_name_the_spec_and_the_part(spec, message):
    with pytest.raises(ImportStringError) as info:
        importString(spec)
    assert message in str(info.value)
    assert isinstance(info.value, ImportError)


def test_error_inside_the_imported_module_is_reported_not_masked(tmp_path, monkeypatch):
    (tmp_path / 'broken_mod_for_test.py').write_text("import no_such_dependency_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportStringError, match="failed: No module named 'no_such_dependency_here'"):
        importString('broken_mod_for_test.attr')
