"""The status listener as real peers see it: promtool, a Prometheus server, a headless browser.

Debian's ``prometheus`` (``/usr/bin/prometheus``, ``/usr/bin/promtool``) and
``chromium`` packages must be installed: these tests fail, never skip, when
they are missing.
"""

import json
import os
import re
import subprocess
import textwrap
import urllib.parse
import urllib.request

from tests.support.procs import waitFor
from tests.support.status import freePort, get
from tests.process.test_procman_status import counted, start

PROMETHEUS = '/usr/bin/prometheus'
PROMTOOL = '/usr/bin/promtool'
CHROMIUM = '/usr/bin/chromium'


def test_promtool_accepts_the_text_exposition(tmp_path, procs):
    # promtool reads the text format only; the OpenMetrics form is what the
    # Prometheus server of the next test asks for and parses.
    pm = start(tmp_path, procs)
    for path in ('/', '/code/404', '/boom'):
        pm.request(path)
    counted(pm, 3)
    body = get(pm.status, '/metrics')[2]
    check = subprocess.run([PROMTOOL, 'check', 'metrics'], input=body,
                           capture_output=True, timeout=30)
    assert check.returncode == 0, (check.stdout + check.stderr).decode()
    assert not check.stdout.strip() and not check.stderr.strip(), \
        (check.stdout + check.stderr).decode()
    pm.stop()


def _query(port, expr):
    url = f'http://127.0.0.1:{port}/api/v1/query?' + urllib.parse.urlencode({'query': expr})
    with urllib.request.urlopen(url, timeout=5) as answer:
        data = json.load(answer)
    assert data['status'] == 'success', data
    return [float(r['value'][1]) for r in data['data']['result']]


def _answers(port, expr, want):
    try:
        return _query(port, expr) == [want]
    except OSError:
        return False        # not listening yet


def test_a_prometheus_server_scrapes_the_pool(tmp_path, procs):
    pm = start(tmp_path, procs, extra="MaxProcesses 2")
    port = freePort()
    config = tmp_path / 'prometheus.yml'
    config.write_text(textwrap.dedent(f"""\
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
        scrape_configs:
          - job_name: peak
            static_configs:
              - targets: ['127.0.0.1:{pm.status[1]}']
        """))
    prometheus = procs([PROMETHEUS, f'--config.file={config}',
                        f'--storage.tsdb.path={tmp_path / "tsdb"}',
                        f'--web.listen-address=127.0.0.1:{port}'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    waitFor(lambda: _answers(port, 'up{job="peak"}', 1.0), 60,
             message="Prometheus scraping the status listener (up == 1)")
    sent = 25
    for i in range(sent):
        pm.request('/code/404' if i % 5 == 0 else '/')
    counted(pm, sent)
    waitFor(lambda: _answers(port, 'sum(peak_requests_total)', float(sent)), 30,
             message=f"sum(peak_requests_total) == {sent} in Prometheus")
    assert _query(port, 'peak_request_duration_seconds_bucket{le="+Inf"}') == [float(sent)]
    assert _query(port, 'peak_request_duration_seconds_count') == [float(sent)]
    assert _query(port, 'peak_responses_total{code="4xx"}') == [5.0]
    assert _query(port, 'peak_workers{state="idle"}') == [2.0]
    assert _query(port, f'peak_manager_info{{config="{pm.path}"}}') == [1.0]
    prometheus.signal(15)
    assert prometheus.wait(30) == 0
    pm.stop()


def test_the_page_loads_in_a_headless_browser_and_shows_each_pid(tmp_path, procs):
    pm = start(tmp_path, procs)
    pm.request('/')
    profile = tmp_path / 'profile'
    profile.mkdir()
    browser = procs([CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
                     '--no-first-run', '--disable-background-networking',
                     '--disable-component-update', '--disable-sync',
                     f'--user-data-dir={profile}', '--dump-dom',
                     f'http://127.0.0.1:{pm.status[1]}/'],
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                    env=dict(HOME=str(tmp_path)))
    dom, _ = browser.popen.communicate(timeout=90)
    dom = dom.decode()
    assert browser.returncode == 0
    assert '<table id="workers">' in dom, dom[:2000]
    pids = re.findall(r'<td class="pid">(\d+)</td>', dom)
    assert sorted(map(int, pids)) == sorted(pm.children()), dom[:4000]
    assert '<svg id="latency"' in dom and 'http-equiv="refresh"' in dom
    pm.stop()
    assert os.path.exists(str(profile))
