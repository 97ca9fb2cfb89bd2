"""Signals on a real `peak` process running an event-driven command."""

import os
import signal
import subprocess
import time

import pytest

from tests.support.procs import waitFor

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def eventDrivenIni(tmp_path, components, extra=''):
    ini = tmp_path / 'ed.ini'
    ini.write_text(
        "#!/usr/bin/env -S peak runIni\n"
        "[peak.running]\n"
        "app = importString('peak_lite.running.commands:EventDriven')\n"
        f"components = {components!r}\n"
        "stopAfter = 60\n" + extra)
    return str(ini)


@pytest.fixture
def marks(tmp_path):
    names = ('READY', 'GO', 'DONE', 'TERM')
    return {name: str(tmp_path / f"mark.{name.lower()}") for name in names}


def startPeak(procs, ini, marks):
    env = {'PYTHONPATH': REPO}
    env.update({f"MARK_{k}": v for k, v in marks.items()})
    p = procs(['peak', 'runIni', ini], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    waitFor(lambda: os.path.exists(marks['READY']) or p.returncode is not None, 30,
             message="the event-driven command to be ready")
    assert p.returncode is None, p.popen.communicate()
    return p


def stderrOf(p):
    return p.popen.stderr.read().decode()


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_while_idle_exits_promptly(procs, tmp_path, marks, signum):
    ini = eventDrivenIni(tmp_path, ['tests.running.sample:Marker'])
    p = startPeak(procs, ini, marks)
    sent = time.monotonic()
    p.signal(signum)
    assert p.wait(timeout=5) == 0, stderrOf(p)
    assert time.monotonic() - sent < 0.5


@pytest.mark.parametrize('component', ['LongCallback', 'LongTask'])
def test_sighup_waits_for_the_running_task(procs, tmp_path, marks, component):
    ini = eventDrivenIni(tmp_path, [f'tests.running.sample:{component}'])
    p = startPeak(procs, ini, marks)
    p.signal(signal.SIGHUP)
    # The task cannot finish before GO exists, so the process must still be there.
    with pytest.raises(subprocess.TimeoutExpired):
        p.wait(timeout=0.3)
    assert not os.path.exists(marks['DONE'])
    open(marks['GO'], 'w').close()
    assert p.wait(timeout=10) == 0, stderrOf(p)
    assert os.path.exists(marks['DONE'])


def test_custom_signal_handler_from_the_ini_file(procs, tmp_path, marks):
    ini = eventDrivenIni(
        tmp_path, ['tests.running.sample:Marker'],
        "[peak.running.mainLoop]\n"
        "signalHandler = importString('tests.running.sample:CustomHandler')\n")
    p = startPeak(procs, ini, marks)
    p.signal(signal.SIGTERM)
    waitFor(lambda: os.path.exists(marks['TERM']), 10, message="the custom SIGTERM method")
    assert p.returncode is None      # the default handler would have stopped it
    p.signal(signal.SIGUSR1)
    assert p.wait(timeout=10) == 42, stderrOf(p)


def test_stop_after_from_the_command_line(procs, tmp_path):
    p = procs(['peak', 'EventDriven', '--stop-after', '0.3'], env={'PYTHONPATH': REPO},
              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    start = time.monotonic()
    assert p.wait(timeout=30) == 0, stderrOf(p)
    # Process start-up is included, so only the lower bound is tight.
    assert 0.3 <= time.monotonic() - start < 30


def test_idle_timeout_and_run_at_least(procs, tmp_path, marks):
    ini = eventDrivenIni(tmp_path, ['tests.running.sample:Marker'],
                         "idleTimeout = 0.1\nrunAtLeast = 0.6\n")
    env = {'PYTHONPATH': REPO, 'MARK_READY': marks['READY']}
    p = procs(['peak', 'runIni', ini], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    waitFor(lambda: os.path.exists(marks['READY']), 30)
    ready = time.monotonic()
    assert p.wait(timeout=30) == 0, stderrOf(p)
    # runAtLeast counts from the loop's start, just before READY was written.
    assert time.monotonic() - ready >= 0.5
