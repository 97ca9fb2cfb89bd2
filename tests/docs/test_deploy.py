"""docs/deploy.md: the systemd units, the image recipe and the Kubernetes manifests are
parsed and checked against the procman config shown with them, and that config runs.

Each fenced block of the page starts with a comment naming its file
(``# /etc/systemd/system/myapp.service``, ``# Dockerfile``, ``# k8s/hpa.yaml``).
Only what differs on this machine is rewritten before a config runs: the
application (a test app), file paths (under the test's directory) and
addresses (free ports on 127.0.0.1).
"""

import configparser
import http.client
import json
import re
import shlex
import signal
import socket
import sys
from pathlib import Path

import yaml

from peak_lite.running.procman.configtypes import duration
from tests.process.test_procman_systemd import WRAPPER, NotifySocket
from tests.support.fcgi_client import FastCGIClient, environFor
from tests.support.procman import Procman, peakArgv

DOC = Path(__file__).resolve().parent.parent.parent / 'docs' / 'deploy.md'
FENCE = re.compile(r'^```(\w*)\n(# (\S+)\n.*?)^```$', re.M | re.S)
APP = 'tests.procman.ops_apps:ops'


def blocks():
    """{file name: text} of every fenced block of the page."""
    found = {name: text for _, text, name in FENCE.findall(DOC.read_text())}
    assert len(found) >= 9, sorted(found)
    return found


def unit(name):
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=('=',))
    parser.optionxform = str
    parser.read_string(blocks()[name])
    return parser


def procmanKeys(text):
    """{key: value} of a procman config's ``Key value`` lines."""
    keys = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith('#'):
            key, _, value = line.partition(' ')
            keys[key] = value.strip()
    return keys


def stopBudget(keys):
    return sum(duration(keys.get(k, '0')) for k in ('DrainDelay', 'StopTimeout', 'KillTimeout'))


def manifests():
    docs = {}
    for name, text in blocks().items():
        if name.startswith('k8s/'):
            docs[yaml.safe_load(text)['kind']] = yaml.safe_load(text)
    return docs


def freePort():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def localConfig(text, tmp_path, ports):
    """The config shown, made to run here: a test app, tmp paths, free local ports."""
    out = []
    for line in text.splitlines():
        key, _, value = line.strip().partition(' ')
        value = value.strip()
        if key == 'Command':
            line = f"Command {value.split()[0]} {APP}"
        elif key in ('PidFile', 'StdErr', 'AccessLog') and value != '-':
            line = f"{key} {tmp_path / Path(value).name}"
        elif key in ('Listen', 'StatusListen'):
            port = int(value.rpartition(':')[2])
            line = f"{key} 127.0.0.1:{ports.setdefault(port, freePort())}"
        out.append(line)
    return '\n'.join(out) + '\n'


# -- systemd ---------------------------------------------------------------------

def test_systemd_unit_is_notify_with_reload_mixed_kill_and_socket_activation():
    service = unit('/etc/systemd/system/myapp.service')['Service']
    assert service['Type'] == 'notify'
    assert shlex.split(service['ExecReload'])[-2:] == ['-HUP', '$MAINPID']
    assert service['KillMode'] == 'mixed' and service['KillSignal'] == 'SIGTERM'
    start = shlex.split(service['ExecStart'])
    assert start[1:] == ['procman', '/etc/myapp/myapp.conf'] and start[0].endswith('/peak')
    sock = unit('/etc/systemd/system/myapp.socket')
    assert sock['Socket']['ListenStream'] == '/run/myapp.sock'
    assert 'myapp.socket' in unit('/etc/systemd/system/myapp.service')['Unit']['Requires']
    keys = procmanKeys(blocks()['/etc/myapp/myapp.conf'])
    assert 'Listen' not in keys            # the socket comes from systemd
    assert duration(service['TimeoutStopSec']) > stopBudget(keys)
    assert keys['PidFile'].startswith(f"/run/{service['RuntimeDirectory']}/")


def test_the_systemd_config_runs_under_notify_and_socket_activation(tmp_path, procs):
    """What systemd would do with the units: pass the socket, read the notifications,
    ExecReload's SIGHUP, KillSignal's SIGTERM."""
    notify = NotifySocket(tmp_path / 'notify')
    path = str(tmp_path / 'myapp.sock')
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    pm = Procman(tmp_path, procs, listen=False, env={'NOTIFY_SOCKET': notify.path})
    pm.write(localConfig(blocks()['/etc/myapp/myapp.conf'], tmp_path, {}))
    pm.pidfile, pm.stderr = str(tmp_path / 'myapp.pid'), str(tmp_path / 'error_log')
    argv = [sys.executable, '-c', WRAPPER, str(listener.fileno())] + peakArgv(
        'procman', pm.path)[1:]
    pm.proc = procs(argv, env=pm.env, pass_fds=(listener.fileno(),), cwd=str(tmp_path))
    pm.pid = pm.proc.pid
    listener.close()
    ready = notify.waitFor('READY=1')
    with FastCGIClient(path) as c:
        assert c.request(environFor('GET', '/')).status == 200
    pm.signal(signal.SIGHUP)                 # ExecReload
    reloading = notify.waitFor('RELOADING=1', after=ready + 1)
    notify.waitFor('READY=1', after=reloading + 1)
    with FastCGIClient(path) as c:
        assert c.request(environFor('GET', '/')).status == 200
    pm.stop()
    notify.waitFor('STOPPING=1')
    # Both generations wrote the access log the config names, a line per request.
    assert (tmp_path / 'access_log').read_text().count('"GET / HTTP/1.1" 200') == 2
    notify.close()


# -- a container --------------------------------------------------------------------

def test_image_recipe_runs_the_manager_as_pid_1_with_sigterm_and_the_status_port():
    lines = [line for line in blocks()['Dockerfile'].splitlines()
             if line and not line.startswith('#')]
    directives = {}
    for line in lines:
        word, _, rest = line.partition(' ')
        directives.setdefault(word, []).append(rest)
    assert directives['STOPSIGNAL'] == ['SIGTERM']
    # The exec form: procman itself is PID 1, not a shell.
    entry = json.loads(directives['ENTRYPOINT'][-1])
    assert entry == ['peak', 'procman', '/etc/app/app.conf']
    keys = procmanKeys(blocks()['app.conf'])
    exposed = {int(p) for p in directives['EXPOSE'][0].split()}
    ports = {int(keys[k].rpartition(':')[2]) for k in ('Listen', 'StatusListen')}
    assert ports <= exposed
    health = directives['HEALTHCHECK'][0]
    assert f"127.0.0.1:{keys['StatusListen'].rpartition(':')[2]}/healthz" in health


# -- Kubernetes ----------------------------------------------------------------------

def test_kubernetes_manifests_agree_with_the_config_they_ship():
    docs = manifests()
    assert {'ConfigMap', 'Deployment', 'Service', 'HorizontalPodAutoscaler'} <= set(docs)
    shipped = docs['ConfigMap']['data']['app.conf']
    assert shipped == blocks()['app.conf']              # the same file as the image's
    keys = procmanKeys(shipped)
    pod = docs['Deployment']['spec']['template']['spec']
    [container] = pod['containers']
    ports = {p['name']: p['containerPort'] for p in container['ports']}
    statusPort = int(keys['StatusListen'].rpartition(':')[2])
    listenPort = int(keys['Listen'].rpartition(':')[2])
    for probe, path in (('readinessProbe', '/readyz'), ('livenessProbe', '/healthz')):
        get = container[probe]['httpGet']
        assert get['path'] == path
        assert ports.get(get['port'], get['port']) == statusPort
    assert pod['terminationGracePeriodSeconds'] > stopBudget(keys)
    assert duration(keys['DrainDelay']) > 0
    service = docs['Service']['spec']
    assert service['selector'] == docs['Deployment']['spec']['selector']['matchLabels']
    assert ports[service['ports'][0]['targetPort']] == listenPort
    annotations = docs['Deployment']['spec']['template']['metadata']['annotations']
    assert int(annotations['prometheus.io/port']) == statusPort
    hpa = docs['HorizontalPodAutoscaler']['spec']
    assert hpa['scaleTargetRef']['name'] == docs['Deployment']['metadata']['name']
    [metric] = hpa['metrics']
    rules = yaml.safe_load(blocks()['prometheus-adapter/rules.yaml'])['rules']
    [rule] = [r for r in rules if r['name']['as'] == metric['pods']['metric']['name']]
    assert rule['seriesQuery'].startswith('peak_workers{')
    assert 'state="busy"' in rule['metricsQuery']


def test_probe_paths_and_ports_answer_on_a_running_pool(tmp_path, procs):
    """The Deployment's probes and the HPA's metric, asked of the config it ships."""
    docs = manifests()
    container = docs['Deployment']['spec']['template']['spec']['containers'][0]
    ports = {}
    pm = Procman(tmp_path, procs, listen=False)
    pm.write(localConfig(docs['ConfigMap']['data']['app.conf'], tmp_path, ports) +
             f"PidFile {pm.pidfile}\n")
    pm.start(children=4)
    named = {p['name']: p['containerPort'] for p in container['ports']}
    for probe in ('readinessProbe', 'livenessProbe'):
        get = container[probe]['httpGet']
        port = ports[named.get(get['port'], get['port'])]
        conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
        conn.request('GET', get['path'])
        assert conn.getresponse().status == 200, (probe, get)
        conn.close()
    conn = http.client.HTTPConnection('127.0.0.1', ports[named['status']], timeout=10)
    conn.request('GET', '/metrics')
    metrics = conn.getresponse().read().decode()
    assert re.search(r'^peak_workers\{[^}]*state="busy"', metrics, re.M), metrics
    conn.close()
    pm.stop()
