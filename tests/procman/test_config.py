"""Unit tests of the procman config file loader (peak_lite.running.procman.config)."""

import grp
import os
import pathlib
import pwd
import re
import subprocess
import sys
import tempfile

import hypothesis
import pytest
from hypothesis import strategies as st
from zope.interface.verify import verifyClass, verifyObject

from peak_lite.running.procman.config import (
    DEFAULT_SOCKET_MODE, BusyStarter, ListenAddress, ProcmanConfig, loadConfig)
from peak_lite.running.procman.configkeys import KEYS, SECTIONS, markdownTable
from peak_lite.running.procman.interfaces import (
    ConfigError, IBusyStarter, IListenAddress, IProcmanConfig, ProcmanError)
from tests.support.procs import Proc

BAD_CONFIGS = pathlib.Path(__file__).parent / 'bad_configs'
DOCS = pathlib.Path(__file__).parent.parent.parent / 'docs' / 'procman.md'

# The classic example config of PEAK's procman, character for character.
SEED = """\
#!invoke peak procman

Command      CGI MyPackage:MyApp       # Run this in subprocesses
PidFile      /var/run/myApp.pid        # Shell-lock this file/use as pid
StdErr       /var/log/httpd/error_log  # Point sys.stderr here

Prefork      3   # start 3 processes
MinProcesses 1   # always have at least 1
MaxProcesses 5   # but no more than 5

# ensure that these modules/classes are loaded before forking
import zope.publisher.browser
import zope.publisher.publish

<BusyStarter>
  Priority  1
  Semaphore /var/tmp/MyApp.busy
  RunEvery  5
</BusyStarter>
"""


@pytest.fixture
def write(tmp_path):
    """``write(text, name='app.conf')`` writes a config file and returns its path."""
    def write(text, name='app.conf'):
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding='utf-8')
        return str(path)
    return write


def load(write, text, **kw):
    return loadConfig(write(text), **kw)


def error(write, text, **kw):
    with pytest.raises(ConfigError) as info:
        load(write, text, **kw)
    return info.value


# -- the seed and the shapes of a file ---------------------------------------

def test_seed_verbatim(write):
    cfg = load(write, SEED, checkFiles=False)
    assert cfg.Command == ['CGI', 'MyPackage:MyApp']
    assert cfg.PidFile == '/var/run/myApp.pid'
    assert cfg.StdErr == '/var/log/httpd/error_log'
    assert (cfg.Prefork, cfg.MinProcesses, cfg.MaxProcesses) == (3, 1, 5)
    assert cfg.imports == ['zope.publisher.browser', 'zope.publisher.publish']
    assert cfg.busyStarters == [BusyStarter(1, '/var/tmp/MyApp.busy', 5.0)]
    assert cfg.busyStarters[0].lineno == 15
    assert cfg.Listen == []
    assert [cfg.lineOf(k) for k in ('Command', 'PidFile', 'StdErr', 'Prefork',
                                    'MinProcesses', 'MaxProcesses', 'import',
                                    'BusyStarter')] == [3, 4, 5, 7, 8, 9, 12, 15]


def test_seed_with_its_paths_in_a_temporary_directory(write, tmp_path):
    text = SEED.replace('/var/run/', f'{tmp_path}/').replace(
        '/var/log/httpd/', f'{tmp_path}/').replace('/var/tmp/', f'{tmp_path}/')
    cfg = load(write, text)
    assert cfg.PidFile == f'{tmp_path}/myApp.pid'
    assert cfg.StdErr == f'{tmp_path}/error_log'
    assert cfg.busyStarters[0].Semaphore == f'{tmp_path}/MyApp.busy'


def test_env_shebang_and_extra_args(write):
    cfg = loadConfig(write('#!/usr/bin/env -S peak procman\nCommand CGI app:App\n'),
                     ['--flag', pathlib.Path('x y')])
    assert cfg.Command == ['CGI', 'app:App', '--flag', 'x y']
    assert cfg.lineOf('command') == 2


def test_defaults(write):
    cfg = load(write, 'Command CGI app:App\n')
    assert cfg.filename.endswith('app.conf')
    assert (cfg.PidFile, cfg.StdErr, cfg.ChildConfig) == (None, None, None)
    assert (cfg.Prefork, cfg.MinProcesses, cfg.MaxProcesses) == (1, 1, 4)
    assert (cfg.StartInterval, cfg.IdleTimeout) == (0.5, 60.0)
    assert (cfg.MaxRequests, cfg.MaxRequestsJitter, cfg.RequestTimeout) == (0, 0, 0.0)
    assert (cfg.StopTimeout, cfg.KillTimeout) == (30.0, 5.0)
    assert (cfg.Listen, cfg.imports) == ([], [])
    assert (cfg.User, cfg.Group, cfg.uid, cfg.gid) == (None, None, None, None)
    assert cfg.busyStarters == [BusyStarter(0, None, 5.0)]
    assert cfg.busyStarters[0].lineno is None
    assert cfg.lineOf('PidFile') is None


def test_prefork_defaults_to_min_processes(write):
    assert load(write, 'Command x\nMinProcesses 3\n').Prefork == 3


def test_interfaces(write):
    cfg = load(write, 'Command x\nListen 127.0.0.1:0\n')
    assert verifyObject(IProcmanConfig, cfg)
    assert verifyClass(IProcmanConfig, ProcmanConfig)
    assert verifyObject(IListenAddress, cfg.Listen[0])
    assert verifyClass(IListenAddress, ListenAddress)
    assert verifyObject(IBusyStarter, cfg.busyStarters[0])
    assert verifyClass(IBusyStarter, BusyStarter)


@pytest.mark.parametrize('line, attr, value', [
    ('Command  CGI  "My App:App" --x=1', 'Command', ['CGI', 'My App:App', '--x=1']),
    ('PidFile /tmp/app.pid', 'PidFile', '/tmp/app.pid'),
    ('StdErr /tmp/app.log', 'StdErr', '/tmp/app.log'),
    ('Prefork 0', 'Prefork', 0),
    ('MinProcesses 2', 'MinProcesses', 2),
    ('MaxProcesses 16', 'MaxProcesses', 16),
    ('StartInterval 250ms', 'StartInterval', 0.25),
    ('IdleTimeout 2m', 'IdleTimeout', 120.0),
    ('MaxRequests 1000', 'MaxRequests', 1000),
    ('RequestTimeout 1h', 'RequestTimeout', 3600.0),
    ('StopTimeout 10s', 'StopTimeout', 10.0),
    ('KillTimeout .5', 'KillTimeout', 0.5),
    ('ChildConfig app.conf', 'ChildConfig', 'app.conf'),
    ('User root', 'User', 'root'),
    ('Group root', 'Group', 'root'),
    ('import pkg.mod:Class.attr', 'imports', ['pkg.mod:Class.attr']),
    ('mInPrOcEsSeS 2', 'MinProcesses', 2),
])
def test_each_key(write, line, attr, value):
    first = '\n' if line.startswith('Command') else 'Command x\n'
    cfg = load(write, f'{first}{line}   # a comment\n')
    if attr == 'ChildConfig':
        value = os.path.join(os.path.dirname(cfg.filename), value)
    assert getattr(cfg, attr) == value
    assert cfg.lineOf(line.split()[0]) == 2


def test_max_requests_jitter(write):
    cfg = load(write, 'Command x\nMaxRequests 100\nMaxRequestsJitter 10\n')
    assert (cfg.MaxRequests, cfg.MaxRequestsJitter) == (100, 10)


@pytest.mark.parametrize('text, seconds', [
    ('0', 0.0), ('0.5', 0.5), ('30', 30.0), ('500ms', 0.5), ('30s', 30.0),
    ('2m', 120.0), ('1h', 3600.0), ('1.5 s', 1.5), ('7.', 7.0),
])
def test_durations(write, text, seconds):
    assert load(write, f'Command x\nStopTimeout {text}\n').StopTimeout == seconds


@pytest.mark.parametrize('text, expected', [
    ('unix:/run/app.sock', ListenAddress('unix', path='/run/app.sock',
                                         mode=DEFAULT_SOCKET_MODE)),
    ('unix:/run/app.sock:0660', ListenAddress('unix', path='/run/app.sock', mode=0o660)),
    ('unix:/run/a:b.sock:666', ListenAddress('unix', path='/run/a:b.sock', mode=0o666)),
    ('127.0.0.1:8080', ListenAddress('tcp', host='127.0.0.1', port=8080, family='inet')),
    ('localhost:0', ListenAddress('tcp', host='localhost', port=0, family='inet')),
    ('[::1]:9000', ListenAddress('tcp', host='::1', port=9000, family='inet6')),
    ('fd:3', ListenAddress('fd', fd=3)),
])
def test_listen(write, text, expected):
    cfg = load(write, f'Command x\n\nListen {text}\n', checkFiles=False)
    assert cfg.Listen == [expected]
    assert cfg.Listen[0].lineno == 3


def test_default_socket_mode_is_owner_only():
    assert DEFAULT_SOCKET_MODE == 0o600


def test_listen_many_in_order_and_str(write, tmp_path):
    cfg = load(write, 'Listen fd:0\nCommand x\nListen app.sock\n'.replace(
        'app.sock', 'unix:app.sock') + 'Listen [::]:80\n')
    assert [str(a) for a in cfg.Listen] == [
        'fd:0', f'unix:{tmp_path}/app.sock:0600', '[::]:80']
    assert [a.lineno for a in cfg.Listen] == [1, 3, 4]


def test_relative_paths_are_relative_to_the_config_file(write, tmp_path):
    (tmp_path / 'child.ini').write_text('[x]\n')
    cfg = load(write, 'Command x\nPidFile run/../app.pid\nStdErr err.log\n'
                      'ChildConfig child.ini\n<BusyStarter>\nSemaphore app.busy\n'
                      '</BusyStarter>\n')
    assert cfg.PidFile == f'{tmp_path}/app.pid'
    assert cfg.StdErr == f'{tmp_path}/err.log'
    assert cfg.ChildConfig == f'{tmp_path}/child.ini'
    assert cfg.busyStarters[0].Semaphore == f'{tmp_path}/app.busy'


def test_busy_starters_sorted_by_priority(write):
    cfg = load(write, 'Command x\n<BusyStarter low>\nPriority -1\n</BusyStarter>\n'
                      '<BusyStarter>\nRunEvery 500ms\n</BusyStarter>\n'
                      '<BusyStarter high>\nPriority 7\n</BusyStarter>\n'
                      '<BusyStarter/>\n')
    assert [(b.Priority, b.RunEvery, b.lineno) for b in cfg.busyStarters] == [
        (7, 5.0, 8), (0, 0.5, 5), (0, 5.0, 11), (-1, 5.0, 2)]


def test_comments(write):
    cfg = load(write, 'Command CGI "a # b" c\\ #d  # the app\n'
                      '  # indented comment\n'
                      '<BusyStarter>   # trailing\n  Semaphore /tmp/app#1.busy\n'
                      '</BusyStarter>  # trailing\n', checkFiles=False)
    assert cfg.Command == ['CGI', 'a # b', 'c #d']
    assert cfg.busyStarters[0].Semaphore == '/tmp/app#1.busy'


def test_crlf_bom_and_case(write):
    cfg = load(write, '\ufeffcommand x\r\nMAXPROCESSES 2\r\n<busystarter>\r\n'
                      '</BUSYSTARTER>\r\n'.encode('utf-8'))
    assert (cfg.Command, cfg.MaxProcesses) == (['x'], 2)
    assert cfg.lineOf('MaxProcesses') == 2


def test_define_substitution(write):
    cfg = load(write, '%define app MyApp\nCommand CGI $app:App $$HOME\n')
    assert cfg.Command == ['CGI', 'MyApp:App', '$HOME']


def test_define_with_braces_and_case(write):
    cfg = load(write, '%define App MyApp\n%define app MyApp\nCommand CGI ${APP}:App\n')
    assert cfg.Command == ['CGI', 'MyApp:App']


@pytest.mark.parametrize('text, lineno, message', [
    ('%define a 1\n%define a 2\nCommand x\n', 2,
     '%define a is given twice with different values; keep one'),
    ('Command x $ y\n', 1, "a lone $ in 'x $ y'; write $$ for a literal $, or $NAME"),
    ('%frobnicate x\nCommand x\n', 1,
     "cannot read '%frobnicate x': the only directive is '%define NAME VALUE'"),
    ('Command x\n<BusyStarter>\n<BusyStarter>\n</BusyStarter>\n', 3,
     '<BusyStarter>: sections do not nest; close <BusyStarter> (line 2) first'),
    ('Command x\n</ BusyStarter x>\n', 2,
     "cannot read '</ BusyStarter x>' as a section tag such as </BusyStarter>"),
])
def test_syntax_errors(write, text, lineno, message):
    e = error(write, text)
    assert (e.lineno, e.message) == (lineno, message)


def test_user_and_group(write):
    root = pwd.getpwuid(0)
    cfg = load(write, f'Command x\nUser {root.pw_name}\n')
    assert (cfg.uid, cfg.gid) == (0, root.pw_gid)
    group = grp.getgrgid(os.getgid()).gr_name
    cfg = load(write, f'Command x\nUser 0\nGroup {group}\n')
    assert (cfg.User, cfg.uid, cfg.gid) == ('0', 0, os.getgid())
    cfg = load(write, 'Command x\nUser 4000000\nGroup 4000001\n')
    assert (cfg.uid, cfg.gid) == (4000000, 4000001)


def test_reload_check_timeout(write):
    assert load(write, 'Command x\n').ReloadCheckTimeout == 60.0
    assert load(write, 'Command x\nReloadCheckTimeout 2m\n').ReloadCheckTimeout == 120.0


def test_listen_owner(write):
    assert load(write, 'Command x\n').ListenOwner is None
    www = pwd.getpwnam('www-data')
    group = grp.getgrnam('www-data').gr_gid
    for value, owner in [('www-data', (www.pw_uid, -1)), ('www-data:www-data', (www.pw_uid, group)),
                         (':www-data', (-1, group)), ('0:0', (0, 0)),
                         ('4000000', (4000000, -1)), ('4000000:4000001', (4000000, 4000001))]:
        cfg = load(write, f'Command x\nListen unix:app.sock\nListenOwner {value}\n')
        assert (cfg.ListenOwner, cfg.lineOf('ListenOwner')) == (owner, 3), value


@pytest.mark.parametrize('value, fragment', [
    ('www-data:', ":3: ListenOwner: expected USER, USER:GROUP or :GROUP"),
    (':', ":3: ListenOwner: expected USER, USER:GROUP or :GROUP"),
    ('a:b:c', ":3: ListenOwner: expected USER, USER:GROUP or :GROUP"),
    ('www-data:4294967295', ':3: ListenOwner: 4294967295 is not a valid user or group id'),
    ('no-such-procman-user', ":3: ListenOwner: no user named 'no-such-procman-user'"),
    (':no-such-procman-group', ":3: ListenOwner: no group named 'no-such-procman-group'"),
])
def test_listen_owner_errors(write, value, fragment):
    e = error(write, f'Command x\nListen unix:app.sock\nListenOwner {value}\n')
    assert fragment in str(e)


# -- the key table ------------------------------------------------------------

def test_docs_key_tables_are_the_key_table():
    docs = DOCS.read_text(encoding='utf-8')
    found = re.findall(r'^\| key \| type \| default \| meaning \|\n(?:\|.*\n)*', docs, re.M)
    expected = [markdownTable(KEYS)] + [markdownTable(keys) for keys in SECTIONS.values()]
    assert [table.rstrip('\n') for table in found] == expected, (
        'docs/procman.md disagrees with the key table; paste these tables there:\n\n'
        + '\n\n'.join(expected))


def test_every_key_is_one_documented_attribute(write):
    cfg = load(write, 'Command x\n')
    names = [key.name.lower() for key in KEYS]
    assert len(names) == len(set(names))
    for key in KEYS:
        assert key.attr in IProcmanConfig.names(), key.name
        assert hasattr(cfg, key.attr), key.name
        assert key.doc and '\n' not in key.doc and '|' not in key.doc, key.name
    for keys in SECTIONS.values():
        for key in keys:
            assert key.attr in IBusyStarter.names() and key.doc, key.name


@pytest.mark.parametrize('key', [k for k in KEYS if k.high is not None], ids=lambda k: k.name)
def test_every_bound_is_enforced_at_its_line(write, key):
    e = error(write, f'Command x\n{key.name} {key.high + 1}\n')
    assert (e.lineno, e.message) == (
        2, f'{key.name}: {key.high + 1} is above {key.high}, the largest {key.name}'
           f' allowed; use a smaller number')


# -- errors -------------------------------------------------------------------

def test_error_is_one_line_with_file_and_line(write):
    e = error(write, 'Command x\nPrefork many\n')
    assert isinstance(e, ProcmanError)
    assert str(e) == f"{e.filename}:2: Prefork: expected a whole number >= 0, got 'many'"
    assert (e.lineno, e.filename.endswith('app.conf')) == (2, True)
    assert '\n' not in str(e)


def test_error_at(write):
    cfg = load(write, '\n\nCommand x\n')
    assert str(cfg.errorAt('Command', 'needs a socket')) == f'{cfg.filename}:3: needs a socket'
    assert cfg.errorAt('Listen', 'none').lineno == 1


def test_empty_file(write):
    e = error(write, b'')
    assert (e.lineno, 'no settings' in e.message) == (1, True)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r':1: cannot read the config file: No such file'):
        loadConfig(tmp_path / 'nope.conf')


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ConfigError, match=r':1: cannot read the config file: Is a directory'):
        loadConfig(tmp_path)


def test_huge_file(write):
    e = error(write, '#' * (2 << 20))
    assert 'is this the right file?' in e.message


def test_check_files_off_skips_the_file_system(write):
    cfg = load(write, 'Command x\nChildConfig /nonexistent/child.ini\n'
                      'PidFile /nonexistent/app.pid\n', checkFiles=False)
    assert cfg.ChildConfig == '/nonexistent/child.ini'


def _corpus():
    for path in sorted(BAD_CONFIGS.glob('*.conf')):
        header = path.read_bytes().split(b'\n', 1)[0].decode()
        assert header.startswith('# expect: '), f'{path.name}: no "# expect:" header'
        line, fragment = header[len('# expect: '):].split(': ', 1)
        yield pytest.param(path, int(line), fragment, id=path.stem)


def test_corpus_is_large_enough():
    assert len(list(_corpus())) >= 30


@pytest.mark.parametrize('path, lineno, fragment', list(_corpus()))
def test_bad_config(path, lineno, fragment):
    with pytest.raises(ConfigError) as info:
        loadConfig(path)
    e = info.value
    assert str(e).startswith(f'{path}:{lineno}: '), str(e)
    assert fragment in e.message
    assert '\n' not in str(e)


# -- permissions, checked by an unprivileged process --------------------------

def _loadUnprivileged(path):
    """Load ``path`` as a user without privileges; return the error line or 'OK'."""
    script = ('import sys\nfrom peak_lite.running.procman.config import loadConfig\n'
              'from peak_lite.running.procman.interfaces import ConfigError\n'
              'try:\n    loadConfig(sys.argv[1])\nexcept ConfigError as e:\n'
              '    print(e)\nelse:\n    print("OK")\n')
    argv = [sys.executable, '-c', script, path]
    if os.geteuid() == 0:
        argv = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] + argv
    proc = Proc(argv, stdout=subprocess.PIPE, cwd='/', env={'PYTHONPATH': os.getcwd()})
    try:
        out, _ = proc.popen.communicate(timeout=60)
        assert proc.returncode == 0
        return out.decode().strip()
    finally:
        proc.stop()


@pytest.fixture
def publicDir():
    """A directory an unprivileged user can read; removed afterwards."""
    with tempfile.TemporaryDirectory(prefix='procman-cfg-') as d:
        os.chmod(d, 0o755)
        yield pathlib.Path(d)
        for sub in pathlib.Path(d).iterdir():
            if sub.is_dir():
                sub.chmod(0o755)


def test_unwritable_pid_file_directory(publicDir):
    (publicDir / 'ro').mkdir(mode=0o555)
    (publicDir / 'ro').chmod(0o555)
    conf = publicDir / 'app.conf'
    conf.write_text('Command x\n\nPidFile ro/app.pid  # not ours\n')
    conf.chmod(0o644)
    assert _loadUnprivileged(str(conf)) == (
        f'{conf}:3: PidFile: cannot create {publicDir}/ro/app.pid: directory '
        f'{publicDir}/ro is not writable by this user; fix its permissions')


def test_unreadable_config_and_child_config(publicDir):
    conf = publicDir / 'app.conf'
    conf.write_text('Command x\n')
    conf.chmod(0o600)
    assert _loadUnprivileged(str(conf)).startswith(
        f'{conf}:1: cannot read the config file: Permission denied;')
    (publicDir / 'child.ini').write_text('[x]\n')
    (publicDir / 'child.ini').chmod(0o600)
    conf.write_text('Command x\nChildConfig child.ini\n')
    conf.chmod(0o644)
    assert _loadUnprivileged(str(conf)) == (
        f'{conf}:2: ChildConfig: {publicDir}/child.ini is not readable by this user;'
        f' fix its permissions')


# -- fuzzing --------------------------------------------------------------------

KEYWORDS = ['Command', 'PidFile', 'StdErr', 'Prefork', 'MinProcesses', 'MaxProcesses',
            'StartInterval', 'IdleTimeout', 'MaxRequests', 'MaxRequestsJitter',
            'RequestTimeout', 'StopTimeout', 'KillTimeout', 'Listen', 'ChildConfig',
            'User', 'Group', 'import', '<BusyStarter>', '</BusyStarter>', 'Priority',
            'Semaphore', 'RunEvery', '%define', '#', '$', '<', '>', '/', ':', '[', ']',
            '"', "'", '\\', '-1', '0', '5', '1e9', '500ms', 'unix:', 'fd:', '\r', '\t',
            '\x00', '\ufeff', '\u2028', '\x85']


def _loadText(text):
    with tempfile.NamedTemporaryFile('wb', suffix='.conf') as f:
        f.write(text if isinstance(text, bytes) else text.encode('utf-8', 'surrogatepass'))
        f.flush()
        try:
            cfg = loadConfig(f.name, checkFiles=False)
        except ConfigError as e:
            assert '\n' not in str(e) and e.lineno >= 1, repr(str(e))
            return None
    assert verifyObject(IProcmanConfig, cfg)
    return cfg


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(st.text())
def test_any_text_raises_only_config_error(text):
    _loadText(text)


@hypothesis.settings(max_examples=100, deadline=None)
@hypothesis.given(st.binary())
def test_any_bytes_raise_only_config_error(data):
    _loadText(data)


@hypothesis.settings(max_examples=500, deadline=None)
@hypothesis.given(st.lists(st.lists(st.one_of(st.sampled_from(KEYWORDS), st.text(max_size=5)),
                                    max_size=5).map(' '.join), max_size=12))
def test_config_like_text_raises_only_config_error(lines):
    cfg = _loadText('\n'.join(lines))
    if cfg is not None:
        assert cfg.MinProcesses <= cfg.MaxProcesses and cfg.Prefork <= cfg.MaxProcesses
        assert cfg.Command and cfg.busyStarters
