"""The status listener (StatusListen), through a real manager, real children and real sockets."""

import json
import os
import signal
import socket
import threading

from tests.support.procman import Procman
from tests.support.procs import pidAlive, waitFor
from tests.support.status import freePort, get, parse, value

APP = 'CGI tests.procman.status_apps:app'
REASONS = ('crash', 'max_requests', 'idle', 'timeout', 'memory', 'reload', 'stop')


def start(tmp_path, procs, extra='', prefork=2, **kw):
    port = freePort()
    pm = Procman(tmp_path, procs, command=APP, prefork=prefork,
                 extra=f"StatusListen 127.0.0.1:{port}\n{extra}", **kw)
    pm.status = ('127.0.0.1', port)
    return pm.start()


def metrics(pm):
    code, fields, body = get(pm.status, '/metrics')
    assert code == 200 and fields['Content-Type'].startswith('text/plain; version=0.0.4')
    return parse(body.decode())


def document(pm):
    code, _, body = get(pm.status, '/status')
    assert code == 200
    return json.loads(body)


def counted(pm, n):
    """Metrics once ``n`` requests are counted: a child counts a request as it leaves it,
    just after the response went out, so a client can be a moment ahead."""
    samples = waitFor(lambda: (lambda s: s if value(s, 'peak_requests_total') >= n
                                else None)(metrics(pm)), 10, message=f"{n} requests counted")
    assert value(samples, 'peak_requests_total') == n
    return samples


def in_background(pm, seconds):
    """Request ``/sleep?seconds`` from a thread; return (thread, list that gets the response)."""
    got = []
    thread = threading.Thread(target=lambda: got.append(
        pm.request('/sleep', QUERY_STRING=str(seconds), timeout=30)))
    thread.start()
    return thread, got


def busy(pm, n):
    return waitFor(lambda: sum(c['state'] == 'busy' for c in document(pm)['children']) == n,
                    15, message=f"{n} busy children")


def test_endpoints_answer_and_count_each_request_by_class(tmp_path, procs):
    pm = start(tmp_path, procs)
    sent = {'/': 7, '/code/302': 2, '/code/404': 3, '/boom': 2, '/code/503': 1}
    for path, n in sent.items():
        for _ in range(n):
            pm.request(path)
    samples = counted(pm, 15)
    assert [value(samples, 'peak_responses_total', code=c) for c in
            ('2xx', '3xx', '4xx', '5xx')] == [7, 2, 3, 3]
    assert value(samples, 'peak_request_duration_seconds_bucket', le='+Inf') == 15
    assert value(samples, 'peak_request_duration_seconds_count') == 15
    assert value(samples, 'peak_workers', state='idle') == 2
    assert value(samples, 'peak_worker_spawns_total') == 2
    assert all(value(samples, 'peak_worker_exits_total', reason=r) == 0 for r in REASONS)
    assert value(samples, 'peak_listen_queue_max', listen=f'unix:{pm.socket}') > 0
    assert value(samples, 'peak_listen_queue_length', listen=f'unix:{pm.socket}') == 0
    for pid in pm.children():
        number = next(c['worker'] for c in document(pm)['children'] if c['pid'] == pid)
        for kind in ('uss', 'pss', 'rss'):
            assert value(samples, 'peak_worker_memory_bytes', worker=str(number), kind=kind) > 0
    info = [labels for name, labels in samples if name == 'peak_manager_info']
    assert dict(info[0])['config'] == pm.path
    assert get(pm.status, '/healthz')[:3:2] == (200, b'ok\n')
    assert get(pm.status, '/readyz')[:3:2] == (200, b'ready\n')
    assert get(pm.status, '/nothing')[0] == 404
    doc = document(pm)
    assert doc['manager'] == pm.pid and {c['pid'] for c in doc['children']} == set(pm.children())
    assert doc['totals']['requests'] == 15
    pm.stop()


def test_counters_match_exactly_across_sigkill_and_max_requests(tmp_path, procs):
    pm = start(tmp_path, procs, extra="MaxRequests 4\nMaxProcesses 2")
    seen = []

    def scrape():
        samples = metrics(pm)
        if seen:        # counters never go backwards
            for key, before in seen[-1].items():
                if key[0].endswith(('_total', '_bucket', '_count', '_sum')):
                    assert samples.get(key, 0) >= before, key
        seen.append(samples)
        return samples

    for _ in range(3):
        pm.request('/')
    waitFor(lambda: value(scrape(), 'peak_requests_total') == 3, 10, message="3 counted")
    victim = next(c for c in document(pm)['children'] if c['requests'])
    served = victim['requests']
    os.kill(victim['pid'], signal.SIGKILL)
    waitFor(lambda: value(scrape(), 'peak_worker_exits_total', reason='crash') == 1, 15,
             message="the SIGKILLed child counted as a crash")
    assert value(seen[-1], 'peak_requests_total') == 3 and served
    for i in range(17):
        pm.request('/code/404' if i % 2 else '/')

    def settled():
        # A child at its limit stays idle in its slot until the manager, woken
        # by it, recycles it: settled means none is left at its limit.
        samples = scrape()
        exits = sum(value(samples, 'peak_worker_exits_total', reason=r) for r in REASONS)
        return samples if (value(samples, 'peak_requests_total') >= 20
                           and value(samples, 'peak_workers', state='idle') == 2
                           and value(samples, 'peak_worker_spawns_total') == 2 + exits
                           and all(c['requests'] < 4 for c in document(pm)['children'])) \
            else None
    samples = waitFor(settled, 15, message="every exit replaced, two idle children")
    assert value(samples, 'peak_requests_total') == 20
    assert value(samples, 'peak_responses_total', code='2xx') == 3 + 9
    assert value(samples, 'peak_responses_total', code='4xx') == 8
    assert value(samples, 'peak_request_duration_seconds_bucket', le='+Inf') == 20
    assert value(samples, 'peak_request_duration_seconds_count') == 20
    assert value(samples, 'peak_worker_exits_total', reason='crash') == 1
    # 20 requests, 4 per child, 2 children: some reached their limit.
    assert value(samples, 'peak_worker_exits_total', reason='max_requests') >= 2
    pm.stop()


def test_healthz_and_metrics_answer_while_every_worker_is_busy(tmp_path, procs):
    pm = start(tmp_path, procs, extra="MaxProcesses 2")
    slow = [in_background(pm, 3) for _ in range(2)]
    busy(pm, 2)
    assert get(pm.status, '/healthz', timeout=1)[0] == 200
    samples = metrics(pm)
    assert value(samples, 'peak_workers', state='busy') == 2
    doc = document(pm)
    assert [c['request'] for c in doc['children']] == ['GET /sleep?3'] * 2
    assert all(c['requestAge'] >= 0 for c in doc['children'])
    code, fields, page = get(pm.status, '/')
    assert code == 200 and fields['Content-Type'].startswith('text/html')
    assert b'GET /sleep?3' in page
    for thread, got in slow:
        thread.join(30)
        assert got and got[0].status == 200
    pm.stop()


def test_readyz_turns_503_at_sigterm_while_a_slow_request_completes(tmp_path, procs):
    pm = start(tmp_path, procs, prefork=1)
    # Ready once the child has left 'starting' (it may still be booting now).
    waitFor(lambda: get(pm.status, '/readyz')[0] == 200, 10, message="/readyz 200")
    thread, got = in_background(pm, 2)
    busy(pm, 1)
    pm.signal(signal.SIGTERM)
    waitFor(lambda: get(pm.status, '/readyz')[0] == 503, 5, message="/readyz 503")
    code, _, body = get(pm.status, '/readyz')
    assert (code, body) == (503, b'not ready: stopping\n')
    assert get(pm.status, '/healthz')[0] == 200
    thread.join(30)
    assert got and got[0].status == 200
    assert pm.proc.wait(20) == 0


def test_drain_delay_keeps_serving_while_not_ready(tmp_path, procs):
    pm = start(tmp_path, procs, prefork=1, extra="DrainDelay 1.5")
    kids = pm.children()
    pm.signal(signal.SIGTERM)
    waitFor(lambda: get(pm.status, '/readyz')[0] == 503, 5, message="/readyz 503")
    # Still accepting and serving, by the same child, until the delay is over.
    assert pm.request('/').status == 200
    assert pm.children() == kids
    pm.waitLog("graceful stop: stopping 1 children")
    assert pm.proc.wait(20) == 0
    assert not any(pidAlive(k) for k in kids)


def test_openmetrics_when_asked_and_a_unix_status_socket(tmp_path, procs):
    path = str(tmp_path / 'status.sock')
    pm = Procman(tmp_path, procs, command=APP, prefork=1,
                 extra=f"StatusListen unix:{path}:0600").start()
    pm.request('/')
    waitFor(lambda: b'peak_requests_total 1' in get(path, '/metrics')[2], 10,
             message="the request counted")
    code, fields, body = get(path, '/metrics',
                             [('Accept', 'application/openmetrics-text;version=1.0.0')])
    text = body.decode()
    assert code == 200
    assert fields['Content-Type'].startswith('application/openmetrics-text; version=1.0.0')
    assert text.endswith('# EOF\n')
    assert '# TYPE peak_requests counter' in text and 'peak_requests_total 1' in text
    assert '# TYPE peak_manager info' in text
    pm.stop()
    assert not os.path.exists(path)


def test_sigquit_cuts_the_drain_delay_short(tmp_path, procs):
    pm = start(tmp_path, procs, prefork=1, extra="DrainDelay 60")
    pm.signal(signal.SIGTERM)
    pm.waitLog("(DrainDelay), not ready")
    assert get(pm.status, '/readyz')[0] == 503
    pm.signal(signal.SIGQUIT)
    assert pm.proc.wait(20) == 0       # far sooner than the 60 s delay


def test_totals_survive_a_reload_and_the_listener_answers_after_it(tmp_path, procs):
    pm = start(tmp_path, procs)
    for path in ('/', '/', '/code/404'):
        pm.request(path)
    counted(pm, 3)
    first = set(pm.children())
    refused = pm.log().count('restart refused')
    pm.signal(signal.SIGHUP)
    pm.waitLog('restarting: exec')
    waitFor(lambda: len(set(pm.children()) - first) == 2, 30, message="the new pool")
    assert pm.log().count('restart refused') == refused

    def reloaded():
        try:
            samples = metrics(pm)
        except OSError:
            return None         # bound again once the new manager runs
        return samples if value(samples, 'peak_reloads_total', result='accepted') == 1 \
            else None
    # The previous generation's exits are counted as its children go, after the
    # new ones are ready (an overlapping reload).
    pm.waitLog('the previous generation has stopped', 30)
    samples = waitFor(reloaded, 30, message="the reload counted after the exec")
    assert value(samples, 'peak_requests_total') == 3
    assert value(samples, 'peak_responses_total', code='4xx') == 1
    assert value(samples, 'peak_worker_exits_total', reason='reload') == 2
    assert value(samples, 'peak_worker_spawns_total') == 4
    assert pm.readPid() == pm.pid
    pm.request('/')
    counted(pm, 4)
    pm.stop()


def test_a_status_address_in_use_is_one_line_naming_its_line(tmp_path, procs):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        pm = Procman(tmp_path, procs, command=APP, extra=f"StatusListen 127.0.0.1:{port}")
        line = f"StatusListen 127.0.0.1:{port}"
        with open(pm.path) as f:
            lineno = f.read().splitlines().index(line) + 1
        for args in (('--check',), ()):
            pm.start(*args, wait=False)
            assert pm.proc.wait(30) == 2
            err = pm.proc.popen.stderr.read().decode()
            assert err.count('\n') == 1 and 'Traceback' not in err, err
            assert f"app.conf:{lineno}: {line}: cannot listen: Address already in use" in err
            assert pm.children() == [] and not os.path.exists(pm.pidfile)
