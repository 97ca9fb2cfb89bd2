"""Commands in-process: options, I/O injection, eager interpreters, Bootstrap, runMain."""

import io
import os


import pytest
from zope.interface.verify import verifyClass, verifyObject

from peak_lite import config
from peak_lite.running import commands
from peak_lite.running.commands import (
    AbstractCommand, Alias, Bootstrap, EventDriven, IniInterpreter, InvocationError, main,
    runMain)
from peak_lite.running.interfaces import ICmdLineApp, ICmdLineAppFactory, IMainLoop
from peak_lite.running.mainloop import MainLoop, StopOnStandardSignals
from peak_lite.running.zconfig import ZConfigInterpreter
from tests.running import sample

HERE = os.path.dirname(__file__)
SCHEMA = os.path.join(HERE, 'sample_schema.xml')


@pytest.fixture
def root():
    return config.makeRoot(environ={})


@pytest.fixture
def fooIni(tmp_path):
    path = tmp_path / 'foo.ini'
    path.write_text("#!/usr/bin/env -S peak runIni\n[peak.running]\n"
                    "app = importString('tests.running.sample:Foo')\n")
    return str(path)


def ioKw(**environ):
    return dict(stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO(), environ=environ)


def runPeak(*args, **environ):
    kw = ioKw(**environ)
    code = main(['peak', *args], **kw)
    return code, kw['stdout'].getvalue(), kw['stderr'].getvalue()


def test_interfaces(root):
    verifyClass(ICmdLineApp, AbstractCommand)
    verifyObject(ICmdLineApp, sample.Foo(root, argv=['foo']))
    for factory in (AbstractCommand, sample.Foo, IniInterpreter, Bootstrap, EventDriven,
                    ZConfigInterpreter):
        verifyObject(ICmdLineAppFactory, factory)
    verifyObject(ICmdLineAppFactory, Alias(command=['runIni', 'x.ini']))


def test_options_stop_at_the_first_positional(root):
    foo = sample.Foo(root, argv=['foo', '--greeting=hey', '--loud', 'sub', '--greeting', 'x'])
    assert (foo.greeting, foo.loud, foo.args) == ('hey', True, ['sub', '--greeting', 'x'])
    foo = sample.Foo(root, argv=['foo', '--greeting', 'yo', '--', '--loud'])
    assert (foo.greeting, foo.loud, foo.args) == ('yo', False, ['--loud'])


@pytest.mark.parametrize('argv, message', [
    (['--nope'], "foo: unknown option '--nope'; see 'foo --help'"),
    (['--greeting'], "foo: option --greeting needs a value (str)"),
    (['--loud=1'], "foo: option --loud takes no value, got '--loud=1'"),
])
def test_option_errors(root, argv, message):
    with pytest.raises(InvocationError) as info:
        sample.Foo(root, argv=['foo', *argv])
    assert str(info.value) == message


def test_help_prints_usage_to_the_given_stdout(root):
    kw = ioKw()
    foo = sample.Foo(root, argv=['foo', '--help'], **kw)
    assert foo.run() == 0
    out = kw['stdout'].getvalue()
    assert out.startswith("Usage: foo [--greeting TEXT]")
    assert "--greeting STR" in out and "(default: hello)" in out and "--loud" in out
    assert foo.events == ['cache built', 'assembled']


def test_io_is_injected_and_inherited_by_subcommands(root):
    kw = ioKw(FOO_EXIT='4')
    parent = sample.Foo(root, argv=['parent', 'child', 'a'], **kw)
    child = parent.getSubcommand(sample.Foo)
    assert child.argv == ['child', 'a'] and child.getParentComponent() is parent
    for name in ('stdin', 'stdout', 'stderr', 'environ'):
        assert getattr(child, name) is kw[name]
    assert child.run() == 4
    assert kw['stdout'].getvalue() == "hello a\n"
    # Created without I/O under a command, a command inherits it.
    grandchild = sample.Foo(child, argv=['g'])
    assert grandchild.stdout is kw['stdout']


def test_bootstrap_runIni_returns_the_app_itself_already_assembled(root, fooIni):
    kw = ioKw()
    foo = Bootstrap(root, argv=['peak', 'runIni', fooIni, 'a', 'b'], **kw)
    assert isinstance(foo, sample.Foo)
    assert foo.isAssembled() and foo.events == ['cache built', 'assembled']
    assert foo.argv == [fooIni, 'a', 'b'] and foo.stdout is kw['stdout']
    assert isinstance(foo.getParentComponent(), config.ServiceArea)
    assert foo.run() == 0
    assert foo.events[-1] == 'ran' and kw['stdout'].getvalue() == "hello a b\n"


def test_ini_interpreter_called_directly_is_eager(root, fooIni):
    foo = IniInterpreter(root, argv=['runIni', fooIni], **ioKw())
    assert isinstance(foo, sample.Foo) and foo.isAssembled()


def test_zconfig_is_eager(root, tmp_path):
    conf = tmp_path / 'app.conf'
    conf.write_text(f"#!/usr/bin/env -S peak ZConfig {SCHEMA}\ngreeting howdy\n")
    foo = Bootstrap(root, argv=['peak', 'ZConfig', SCHEMA, str(conf), 'x'], **ioKw())
    assert isinstance(foo, sample.Foo) and foo.events == ['cache built', 'assembled']
    assert foo.greeting == 'howdy' and foo.argv == [str(conf), 'x']
    foo = ZConfigInterpreter(root, argv=['ZConfig', 'tests.running:sample_schema.xml',
                                         str(conf)], **ioKw())
    assert foo.greeting == 'howdy'


def test_zconfig_errors_name_file_and_line(root, tmp_path):
    conf = tmp_path / 'bad.conf'
    conf.write_text("greeting one\nnosuchkey 2\n")
    with pytest.raises(InvocationError, match=rf"^{conf}:2: .*nosuchkey"):
        Bootstrap(root, argv=['peak', 'ZConfig', SCHEMA, str(conf)])
    with pytest.raises(InvocationError, match="missing CONFIG_FILE after the schema"):
        Bootstrap(root, argv=['peak', 'ZConfig', SCHEMA])


def test_alias_is_eager(root, fooIni, monkeypatch):
    monkeypatch.setattr(sample, 'fooAlias', Alias(command=['runIni', fooIni, 'from-alias']))
    foo = Bootstrap(root, argv=['peak', 'import:tests.running.sample:fooAlias', 'more'],
                    **ioKw())
    assert isinstance(foo, sample.Foo) and foo.isAssembled()
    assert foo.argv == [fooIni, 'from-alias', 'more']


def test_shortcut_from_configuration_property(tmp_path, fooIni):
    ini = tmp_path / 'shortcuts.ini'
    ini.write_text(f"[peak.running.shortcuts]\nfoo = commands.Alias(command=['runIni', {fooIni!r}])\n"
                   "[Import on Demand]\ncommands = 'peak_lite.running.commands'\n")
    root = config.makeRoot(iniFiles=[str(ini)], environ={})
    foo = Bootstrap(root, argv=['peak', 'foo', 'z'], **ioKw())
    assert isinstance(foo, sample.Foo) and foo.argv == [fooIni, 'z']


def test_pkg_spec_and_callable(root):
    foo = Bootstrap(root, argv=['peak', 'tests.running.sample:Foo', '--loud', 'q'], **ioKw())
    assert isinstance(foo, sample.Foo) and foo.loud and foo.args == ['q']
    cmd = Bootstrap(root, argv=['peak', 'tests.running.sample:returnsFactory'], **ioKw())
    assert cmd.run() == 5


def test_executable_file_given_to_peak_uses_its_shebang(tmp_path):
    for line in ("#!/usr/bin/env -S peak runIni", "#!invoke peak runIni",
                 "#!/opt/venv/bin/peak runIni"):
        path = tmp_path / 'app.ini'
        path.write_text(f"{line}\n[peak.running]\napp = importString('tests.running.sample:Foo')\n")
        assert commands.shebangWords(str(path)) == ['runIni']
        assert runPeak(str(path), 'x', 'y') == (0, "hello x y\n", "")


def test_file_without_peak_shebang(tmp_path):
    path = tmp_path / 'plain.ini'
    path.write_text("[peak.running]\napp = 1\n")
    code, out, err = runPeak(str(path))
    assert code == 2 and err.count('\n') == 1
    assert "must start with a '#!... peak COMMAND' line" in err


def test_peak_help_lists_shortcuts():
    code, out, err = runPeak('--help')
    assert code == 0 and err == ''
    for name in ('runIni', 'ZConfig', 'EventDriven', 'help'):
        assert f"\n  {name} " in out
    code, out, err = runPeak('help', 'runIni')
    assert code == 0 and 'Usage: peak runIni CONFIG_FILE' in out


@pytest.mark.parametrize('args, code, fragment', [
    (['nosuch'], 2, "peak: unknown command 'nosuch'"),
    ([], 2, "peak: missing argument; Usage: peak NAME"),
    (['runIni'], 2, "peak: runIni: missing argument; Usage: peak runIni CONFIG_FILE"),
    (['runIni', '/nonexistent/app.ini'], 2,
     "peak: runIni: config file '/nonexistent/app.ini' does not exist"),
    (['nosuch.module:thing'], 3,
     "peak nosuch.module:thing: the application failed to load: ImportStringError: cannot"
     " import 'nosuch.module:thing': no module named 'nosuch'"),
])
def test_error_paths_give_one_line(args, code, fragment):
    got, out, err = runPeak(*args)
    assert got == code
    assert err.startswith(fragment) and err.count('\n') == 1, err
    assert 'Traceback' not in err


def test_bad_app_expression(tmp_path):
    path = tmp_path / 'bad.ini'
    path.write_text("[peak.running]\napp = importString('tests.running.sample:Foo'\n")
    code, out, err = runPeak('runIni', str(path))
    assert code == 2 and err.count('\n') == 1 and f"{path}:2:" in err
    path.write_text("[peak.running]\napp = 1 / 0\n")
    code, out, err = runPeak('runIni', str(path))
    assert code == 2 and err.count('\n') == 1 and "ZeroDivisionError" in err
    path.write_text("[peak.running]\napp = 42\n")
    code, out, err = runPeak('runIni', str(path))
    assert code == 2 and "42 is not executable" in err and err.count('\n') == 1
    path.write_text("[other]\nx = 1\n")
    code, out, err = runPeak('runIni', str(path))
    assert code == 2 and "no '[peak.running] app = ...' setting" in err


def test_app_failing_to_build_is_exit_3(tmp_path):
    path = tmp_path / 'fail.ini'
    path.write_text("[peak.running]\napp = importString('tests.running.sample:Foo')\n")
    code, out, err = runPeak('runIni', str(path), '--greeting')
    assert code == 2 and "option --greeting needs a value" in err
    code, out, err = runPeak('tests.running.sample:NoSuchThing')
    assert code == 3 and "has no attribute 'NoSuchThing'" in err and err.count('\n') == 1


def test_peak_debug_shows_the_traceback():
    code, out, err = runPeak('nosuch', PEAK_DEBUG='1')
    assert code == 2 and 'Traceback (most recent call last)' in err
    assert err.splitlines()[-1].startswith("peak: unknown command 'nosuch'")


def test_runMain_trampoline_uses_a_fresh_root_per_factory():
    roots, seen = [], []

    def makeRoot(environ=None):
        roots.append(config.makeRoot(environ={}))
        return roots[-1]

    class Second(AbstractCommand):
        def _run(self):
            seen.append(self.getParentComponent())
            return 7

    class First(AbstractCommand):
        def _run(self):
            seen.append(self.getParentComponent())
            return Second

    kw = ioKw()
    assert runMain(First, ['first'], makeRoot=makeRoot, **kw) == 7
    assert seen == roots and roots[0] is not roots[1]


def test_runMain_runs_a_returned_command_and_maps_results(root):
    kw = ioKw()
    built = sample.Foo(root, argv=['foo', 'z'], **kw)

    class First(AbstractCommand):
        def _run(self):
            return built

    assert runMain(First, ['first'], **kw) == 0 and built.events[-1] == 'ran'

    class Weird(AbstractCommand):
        def _run(self):
            return 'oops'

    assert runMain(Weird, ['weird'], **kw) == 1
    assert "the command returned 'oops', not an exit status" in kw['stderr'].getvalue()

    class Exits(AbstractCommand):
        def _run(self):
            raise SystemExit(9)

    assert runMain(Exits, ['x'], **kw) == 9


def test_event_driven_builds_components_and_runs_the_loop(tmp_path):
    ini = tmp_path / 'ed.ini'
    ini.write_text("[peak.running]\nstopAfter = 0.1\n"
                   "components = ['tests.running.test_commands:Recorder']\n")
    root = config.makeRoot(iniFiles=[str(ini)], environ={})
    ed = EventDriven(root, argv=['EventDriven', '--idle-timeout', '5'], **ioKw())
    assert ed.stopAfter == 0.1 and ed.idleTimeout == 5.0 and ed.runAtLeast == 0
    recorder, = ed.components
    assert recorder.isAssembled() and recorder.mainLoop is ed.mainLoop
    assert ed.run() == 0 and recorder.ticks
    with pytest.raises(InvocationError, match="option --stop-after expects seconds"):
        EventDriven(root, argv=['EventDriven', '--stop-after', '-1'])


def test_main_loop_signal_handler_from_configuration(tmp_path):
    ini = tmp_path / 'sig.ini'
    ini.write_text("[peak.running.mainLoop]\n"
                   "signalHandler = importString('tests.running.sample:CustomHandler')\n")
    root = config.makeRoot(iniFiles=[str(ini)], environ={})
    ml = MainLoop(root)
    assert isinstance(ml.signalHandler, sample.CustomHandler) and ml.signalHandler.mainLoop is ml
    assert isinstance(MainLoop(config.makeRoot(environ={})).signalHandler, StopOnStandardSignals)


from peak_lite import binding  # noqa: E402


class Recorder(binding.Component):
    mainLoop = binding.Obtain(IMainLoop)

    def uponAssembly(self):
        self.ticks = []
        self.mainLoop.eventLoop.call_soon(self.ticks.append, 'tick')
