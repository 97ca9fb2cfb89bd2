import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peak_lite.config import ConfigError, ConfigSyntaxError, UnknownSection, parseIni


def test_property_sections_comments_and_continuations():
    entries = parseIni('''#!/usr/bin/env -S peak runIni
# a comment
; another
[peak.running]
app = dict(
    a=1,   # trailing comment
    b=2)

  # indented comment
port=8080
[peak.naming.schemes]
* = None
x.* = 1
''', 'app.ini')
    assert [(e.kind, e.name, e.lineno) for e in entries] == [
        ('properties', 'peak.running.app', 5),
        ('properties', 'peak.running.port', 10),
        ('properties', 'peak.naming.schemes.*', 12),
        ('properties', 'peak.naming.schemes.x.*', 13),
    ]
    assert eval(entries[0].code) == {'a': 1, 'b': 2}


def test_special_sections_are_recognised_loosely():
    entries = parseIni('''[load  settings FROM]
file = "x.ini"
[Import on Demand]
os_path = "os.path"
[Component Factories]
pkg.mod.IThing = "pkg.mod:Thing"
[Named Services]
my.service = "pkg:make"
''')
    assert [(e.kind, e.key) for e in entries] == [
        ('Load Settings From', 'file'), ('Import on Demand', 'os_path'),
        ('Component Factories', 'pkg.mod.IThing'), ('Named Services', 'my.service')]


@pytest.mark.parametrize('text, line, fragment', [
    ('[peak]\n  x = 1\n', 2, 'indented line continues no'),
    ('x = 1\n', 1, 'before any [section]'),
    ('[peak]\nnot a pair\n', 2, "expected 'name = expression'"),
    ('[peak\n', 1, 'malformed section header'),
    ('[]\n', 1, 'empty section name'),
    ('[bad prefix!]\n', 1, 'unknown section'),
    ('[peak..x]\n', 1, 'invalid property prefix'),
    ('[peak]\nbad key = 1\n', 2, "invalid name 'bad key'"),
    ('[peak]\nx =\n', 2, 'missing expression'),
    ('[peak]\n= 3\n', 2, "missing name"),
    ('[peak]\nx = (1,\n  2 +)\n', 3, 'not a Python expression'),
    ('[peak]\nx = import os\n', 2, 'not a Python expression'),
    ('[Load Settings From]\nfiles = "x"\n', 2, "expected 'file'"),
    ('[Import on Demand]\nmy-mod = "x"\n', 2, 'Python identifier'),
    ('[Named Services]\na.* = 1\n', 2, 'invalid name'),
])
def test_syntax_errors_name_file_line_section_and_key(text, line, fragment):
    with pytest.raises(ConfigSyntaxError) as info:
        parseIni(text, 'conf.ini')
    assert str(info.value).startswith(f'conf.ini:{line}:')
    assert fragment in str(info.value)
    assert info.value.lineno == line


def test_error_message_format():
    with pytest.raises(ConfigSyntaxError) as info:
        parseIni('[peak.running]\napp = 1 +\n', 'app.ini')
    assert str(info.value).startswith('app.ini:2: [peak.running] app: not a Python expression')
    with pytest.raises(UnknownSection, match=r"app.ini:1: unknown section \[Foo Bar\]"):
        parseIni('[Foo Bar]\n', 'app.ini')


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_raises_only_config_errors(text):
    try:
        parseIni(text, 'fuzz.ini')
    except ConfigError:
        pass


_lines = st.one_of(
    st.sampled_from(['[peak]', '[Named Services]', '[Import on Demand]', '[Load Settings From]',
                     '[Component Factories]', '[a b]', '', '# c', '  x', '= 1', '[x.*]']),
    st.builds(lambda k, v: f'{k} = {v}', st.from_regex(r'[a-z*.]{1,6}', fullmatch=True),
              st.text(max_size=12)),
    st.text(max_size=20))


@settings(max_examples=300, deadline=None)
@given(st.lists(_lines, max_size=12))
def test_ini_shaped_text_raises_only_config_errors(lines):
    try:
        entries = parseIni('\n'.join(lines), 'fuzz.ini')
    except ConfigError as e:
        assert str(e).startswith('fuzz.ini:')
    else:
        for e in entries:
            assert e.filename == 'fuzz.ini' and e.lineno >= 1
