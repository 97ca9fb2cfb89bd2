"""AccessLog through real children: one line per request, combined and json, reopened on
SIGUSR1, over FastCGI and HTTP."""

import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import tempfile

import pytest

from tests.support.procman import Procman
from tests.support.procs import waitFor

APP = 'CGI tests.procman.ops_apps:ops'
COMBINED = re.compile(
    r'(?P<addr>\S+) - (?P<user>\S+) \[(?P<time>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] '
    r'"(?P<request>[^"\\]*(?:\\.[^"\\]*)*)" (?P<status>\d{3}) (?P<bytes>\d+|-) '
    r'"(?P<referer>[^"\\]*(?:\\.[^"\\]*)*)" "(?P<agent>[^"\\]*(?:\\.[^"\\]*)*)" '
    r'(?P<micros>\d+)\n')


def lines(path):
    try:
        with open(path) as f:
            return f.readlines()
    except FileNotFoundError:
        return []


def sendMix(pm, n):
    """``n`` requests: pages, a query string, an application failure; their statuses."""
    statuses = []
    for i in range(n):
        if i % 5 == 4:
            assert pm.request('/fail').status == 500
            statuses.append(500)
        else:
            r = pm.request('/', query=f'i={i}', HTTP_USER_AGENT='tester/1 "x"',
                           HTTP_REFERER='http://127.0.0.1/from')
            assert r.status == 200
            statuses.append(200)
    return statuses


def test_combined_access_log_has_exactly_one_line_per_request(tmp_path, procs):
    log = tmp_path / 'access_log'
    pm = Procman(tmp_path, procs, command=APP,
                 extra=f"MinProcesses 2\nMaxProcesses 2\nAccessLog {log}").start(children=2)
    kids = pm.children()
    statuses = sendMix(pm, 20)
    # A worker writes the line once the response is out: wait for the last one, then
    # stop the pool, so that no line can come later, and count.
    waitFor(lambda: len(lines(log)) >= 20, 10, message="20 access log lines")
    pm.stop()
    found = lines(log)
    assert len(found) == 20, found
    # Two workers write in the order their responses finished: compare as multisets.
    assert sorted(int(COMBINED.fullmatch(line)['status']) for line in found) == sorted(statuses)
    for line in found:
        m = COMBINED.fullmatch(line)
        status = int(m['status'])
        assert m['addr'] == '127.0.0.1'
        if status == 200:
            assert m['request'].startswith('GET /?i=') and m['request'].endswith(' HTTP/1.1')
            assert m['referer'] == 'http://127.0.0.1/from'
            assert m['agent'] == 'tester/1 \\"x\\"'
            assert int(m['bytes']) in {len(f'pid={pid}\n') for pid in kids}
        else:
            assert m['request'] == 'GET /fail HTTP/1.1'
        assert 0 <= int(m['micros']) < 30e6


def test_json_access_log_one_object_per_line_and_reopened_on_sigusr1(tmp_path, procs):
    log = tmp_path / 'access.json'
    pm = Procman(tmp_path, procs, command=APP,
                 extra=f"MinProcesses 2\nMaxProcesses 2\nAccessLog {log}\n"
                       f"AccessLogFormat json").start(children=2)
    statuses = sendMix(pm, 10)
    waitFor(lambda: len(lines(log)) >= 10, 10, message="10 access log lines")
    records = [json.loads(line) for line in lines(log)]
    assert sorted(r['status'] for r in records) == sorted(statuses)
    records.sort(key=lambda r: r['uri'] != '/?i=0')
    assert {r['pid'] for r in records} <= set(pm.children())
    first = records[0]
    assert first['method'] == 'GET' and first['uri'] == '/?i=0'
    assert first['protocol'] == 'HTTP/1.1' and first['remote_addr'] == '127.0.0.1'
    assert first['user_agent'] == 'tester/1 "x"' and first['bytes'] > 0
    assert 0 <= first['duration'] < 30
    # A rotation: rename, SIGUSR1, and the manager and every child move to a new file.
    os.rename(log, str(log) + '.1')
    pm.signal(signal.SIGUSR1)
    waitFor(lambda: os.path.exists(log), 10, message="the new access log")
    # A child reopens when its SIGUSR1 handler runs: wait until both wrote the new file.
    sent = [0]

    def bothMoved():
        assert pm.request('/').status == 200
        sent[0] += 1
        return {json.loads(line)['pid'] for line in lines(log)} == set(pm.children())
    waitFor(bothMoved, 20, message="both children writing the new file")
    pm.stop()
    old = [json.loads(line) for line in lines(str(log) + '.1')]
    new = [json.loads(line) for line in lines(log)]
    # Every request is in one of the two files, once.
    assert len(old) + len(new) == 10 + sent[0]
    assert all(r['status'] == 200 for r in new)


def test_http_gateway_logs_each_request_on_a_kept_alive_connection(tmp_path, procs):
    log = tmp_path / 'access_log'
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    pm = Procman(tmp_path, procs, command='HTTP tests.procman.ops_apps:ops', listen=False,
                 extra=f"Listen 127.0.0.1:{port}\nAccessLog {log}").start()
    with socket.create_connection(('127.0.0.1', port), timeout=10) as c:
        for i in range(3):
            c.sendall(f'GET /k?{i} HTTP/1.1\r\nHost: x\r\nUser-Agent: ua\r\n\r\n'.encode())
            data = b''
            while b'\r\n\r\n' not in data or not data.endswith(b'\n'):
                data += c.recv(65536)
            assert data.startswith(b'HTTP/1.1 200')
    waitFor(lambda: len(lines(log)) >= 3, 10, message="three access log lines")
    pm.stop()
    found = lines(log)
    assert len(found) == 3, found
    for i, line in enumerate(found):
        m = COMBINED.fullmatch(line)
        assert m and m['request'] == f'GET /k?{i} HTTP/1.1' and m['status'] == '200', line
        assert m['agent'] == 'ua'


@pytest.mark.skipif(os.getuid() != 0, reason="dropping privileges needs root")
def test_with_user_the_children_reopen_the_rotated_file(tmp_path, procs):
    nobody = pwd.getpwnam('nobody')
    logs = tempfile.mkdtemp(prefix='peak-access-')      # searchable by nobody, as /var/log/x
    try:
        os.chmod(logs, 0o755)
        log = os.path.join(logs, 'access_log')
        pm = Procman(tmp_path, procs, command=APP,
                     extra=f"MinProcesses 2\nMaxProcesses 2\nUser nobody\nAccessLog {log}")
        pm.stderr = os.path.join(logs, 'error_log')
        with open(pm.path) as f:
            text = f.read()
        pm.write(re.sub(r'(?m)^StdErr .*$', f'StdErr {pm.stderr}', text))
        pm.start(children=2)
        assert pm.request('/').status == 200
        # The line is written once the response is out: in the file before it rotates.
        waitFor(lambda: len(lines(log)) == 1, 10, message="the first line")
        os.rename(log, log + '.1')
        pm.signal(signal.SIGUSR1)
        waitFor(lambda: os.path.exists(log), 10, message="the new access log")
        st = os.stat(log)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (nobody.pw_uid, 0o640)
        # Each child has moved its descriptor onto the new file, as nobody.
        waitFor(lambda: not any(_holds(kid, log + '.1') for kid in pm.children()), 10,
                 message="every child off the rotated file")
        assert all(_holds(kid, log) for kid in pm.children())
        for _ in range(10):
            assert pm.request('/').status == 200
        waitFor(lambda: len(lines(log)) >= 10, 10, message="10 lines in the new file")
        pm.stop()
        assert (len(lines(log + '.1')), len(lines(log))) == (1, 10)
        assert 'keeping the old' not in pm.log(), pm.log()
    finally:
        shutil.rmtree(logs)


def _holds(pid, path):
    try:
        fds = os.listdir(f'/proc/{pid}/fd')
    except OSError:
        return False
    found = False
    for fd in fds:
        try:
            found = found or os.readlink(f'/proc/{pid}/fd/{fd}') == path
        except OSError:
            pass
    return found


def test_access_log_dash_writes_to_stderr(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP, extra="AccessLog -").start()
    for i in range(3):
        assert pm.request('/dash', query=str(i)).status == 200
    waitFor(lambda: pm.log().count('"GET /dash?') >= 3, 10, message="3 lines in StdErr")
    pm.stop()
    found = [line + '\n' for line in pm.log().splitlines() if '"GET /dash?' in line]
    assert len(found) == 3 and all(COMBINED.fullmatch(line) for line in found), found
