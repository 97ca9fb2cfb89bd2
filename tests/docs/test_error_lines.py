"""The error lines docs/procman.md shows are what `peak procman` prints, `peak: ` and all."""

import os
import re
import subprocess

import pytest

from tests.docs.runners import scriptsBin
from tests.docs.snippets import ROOT

# The prefix is the name the program runs under: run the installed script.
pytestmark = pytest.mark.skipif(scriptsBin() is None, reason="needs the installed peak script")


def peakArgv(*args):
    return [os.path.join(scriptsBin(), 'peak'), *args]

# A config that makes each documented error, with the key on the documented line.
CONFIGS = {
    "MinProcesses 5 is above": "Command CGI x:y\n" + "\n" * 5 + "MaxProcesses 3\nMinProcesses 5\n",
    "unknown key 'MinProcess'": "Command CGI x:y\n\n\nMinProcess 2\n",
    "no Command given": "MaxProcesses 3\n",
}


def documentedErrors():
    text = (ROOT / 'docs' / 'procman.md').read_text(encoding='utf-8')
    section = text[text.index('### Errors'):]
    block = re.search(r'```\n(.*?)```', section, re.S).group(1)
    return block.splitlines()


@pytest.mark.parametrize('line', documentedErrors())
def test_documented_error_line_is_printed_exactly(line, tmp_path, procs):
    [config] = [text for key, text in CONFIGS.items() if key in line]
    path = tmp_path / 'myapp.conf'
    path.write_text(config)
    code, out, err = finish(procs(peakArgv('procman', str(path)), cwd=str(tmp_path),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    assert (code, out) == (2, '')
    assert err == line.replace('/etc/myapp.conf', str(path)) + '\n'


def test_application_failure_is_one_peak_line(tmp_path, procs):
    code, out, err = finish(procs(peakArgv('CGI', 'nosuch_module_xyz:app'), cwd=str(tmp_path),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    assert code == 3
    assert err.startswith("peak: cannot import 'nosuch_module_xyz:app'")
    assert err.count('\n') == 1


def finish(proc):
    out, err = proc.popen.communicate(timeout=60)
    return proc.popen.returncode, out.decode(), err.decode()
