"""The `peak` and `invoke` scripts as real processes: executable files, shortcuts, errors."""

import os
import subprocess
import sys
import sysconfig


import pytest

from tests.support.procs import VENV_BIN

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {'PYTHONPATH': REPO}
APP = "[peak.running]\napp = importString('tests.running.sample:Foo')\n"


def finish(proc, timeout=30):
    out, err = proc.popen.communicate(timeout=timeout)
    return proc.popen.returncode, out.decode(), err.decode()


def start(procs, argv, **kw):
    return procs(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def executable(path, text):
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def test_executable_runIni_file_with_env_dash_S(procs, tmp_path):
    app = executable(tmp_path / 'app.ini', "#!/usr/bin/env -S peak runIni\n" + APP)
    code, out, err = finish(start(procs, [app, '--greeting', 'hi', 'extra', 'args']))
    assert (code, out, err) == (0, "hi extra args\n", "")


def test_executable_file_through_the_invoke_script(procs, tmp_path):
    app = executable(tmp_path / 'app.ini', f"#!{VENV_BIN}/invoke peak runIni\n" + APP)
    code, out, err = finish(start(procs, [app, 'via', 'invoke']))
    assert (code, out, err) == (0, "hello via invoke\n", "")


def test_invoke_shebang_read_when_given_to_peak(procs, tmp_path):
    app = tmp_path / 'app.ini'
    app.write_text("#!invoke peak runIni\n" + APP)
    code, out, err = finish(start(procs, ['peak', str(app), 'x']))
    assert (code, out, err) == (0, "hello x\n", "")
    code, out, err = finish(start(procs, ['peak', 'runIni', str(app), 'y']))
    assert (code, out, err) == (0, "hello y\n", "")


@pytest.mark.parametrize('args, status, start_of_line', [
    (['nosuch'], 2, "peak: unknown command 'nosuch'"),
    (['runIni'], 2, "peak: runIni: missing argument"),
    (['runIni', 'missing.ini'], 2, "peak: runIni: config file 'missing.ini' does not exist"),
])
def test_errors_are_one_line_with_the_right_status(procs, tmp_path, args, status, start_of_line):
    code, out, err = finish(start(procs, ['peak', *args], cwd=str(tmp_path)))
    assert code == status and out == ""
    assert err.startswith(start_of_line) and err.count('\n') == 1, err


def test_bad_app_expression_names_file_and_line(procs, tmp_path):
    bad = tmp_path / 'bad.ini'
    bad.write_text("[peak.running]\n\napp = importString('tests.running.sample:Foo'\n")
    code, out, err = finish(start(procs, ['peak', 'runIni', str(bad)]))
    assert code == 2 and err.count('\n') == 1 and f"{bad}:3:" in err and 'Traceback' not in err


def test_app_that_fails_to_load_exits_3(procs, tmp_path):
    code, out, err = finish(start(procs, ['peak', 'tests.running.sample:Missing']))
    assert code == 3 and err.count('\n') == 1 and "failed to load" in err


def test_peak_help(procs):
    code, out, err = finish(start(procs, ['peak', '--help']))
    assert code == 0 and "Shortcuts:" in out and "\n  runIni " in out


@pytest.fixture(scope='module')
def thirdPartyVenv(tmp_path_factory):
    """A fresh virtualenv that sees this one's packages and has the test distribution installed.

    ``--system-site-packages`` would expose the base interpreter's packages,
    not this virtualenv's, so a .pth file adds this one's site-packages.
    """
    venv = tmp_path_factory.mktemp('venv3p') / 'v'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    python = str(venv / 'bin' / 'python')
    purelib = subprocess.run([python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                             check=True, capture_output=True, text=True).stdout.strip()
    with open(os.path.join(purelib, '_peak_lite_tests.pth'), 'w') as f:
        f.write(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    dist = os.path.join(REPO, 'tests', 'thirdparty_dist')
    build = tmp_path_factory.mktemp('build3p')
    subprocess.run([sys.executable, '-m', 'pip', '--python', python, 'install', '-q',
                    '--no-deps', '--no-index', '--no-build-isolation', dist],
                   check=True, cwd=str(build), capture_output=True)
    # The console script, as pip writes it for a distribution installed here.
    peak = venv / 'bin' / 'peak'
    peak.write_text(f"#!{python}\nimport sys\nfrom peak_lite.running.scripts import peak\n"
                    "sys.exit(peak())\n")
    peak.chmod(0o755)
    return venv


def test_third_party_shortcut_from_an_entry_point(procs, thirdPartyVenv):
    peak = str(thirdPartyVenv / 'bin' / 'peak')
    code, out, err = finish(start(procs, [peak, 'hello3p', 'from', 'afar']))
    assert (code, out, err) == (0, "hello3p from afar\n", "")
    code, out, err = finish(start(procs, [peak, '--help']))
    assert "\n  hello3p       Say hello from a third-party distribution\n" in out
    # Not installed in the test virtualenv itself.
    code, out, err = finish(start(procs, ['peak', 'hello3p']))
    assert code == 2 and "unknown command 'hello3p'" in err
