"""A Pyramid app mounted as a WebApp's child, under procman behind nginx."""

import sqlite3
import urllib.error
import urllib.request

import pytest

from tests.support.nginx import Nginx
from tests.support.procman import Procman


def fetch(url, method='GET'):
    request = urllib.request.Request(url, method=method, data=b'' if method == 'POST' else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def words(db):
    with sqlite3.connect(db) as conn:
        found = [row[0] for row in conn.execute("SELECT word FROM words ORDER BY word")]
    conn.close()
    return found


@pytest.mark.nginx
def test_pyramid_app_mounted_as_a_child_under_procman_behind_nginx(tmp_path, procs):
    db = str(tmp_path / 'site.db')
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE words (word TEXT)")
        conn.execute("INSERT INTO words VALUES ('alpha')")
    conn.close()
    pm = Procman(tmp_path, procs, command='CGI tests.running.sample_pyramid:Site', prefork=2,
                 env={'SITE_DB': db}).start()
    kids = set(pm.children())
    with Nginx(tmp_path, fastcgi_pass=f'unix:{pm.socket}') as nginx:
        assert fetch(nginx.url + '/health') == (200, 'ok')
        status, body = fetch(nginx.url + '/words')
        fields = dict(item.split('=') for item in body.split())
        # Preloaded once, by the manager, before the fork; served by a child.
        assert status == 200 and fields['preloaded'] == 'alpha'
        assert int(fields['preloadedBy']) == pm.pid and int(fields['served']) in kids
        # A view's write is committed before the response; a failing view's is not.
        assert fetch(nginx.url + '/add/beta', 'POST') == (200, 'added\n')
        assert words(db) == ['alpha', 'beta']
        assert fetch(nginx.url + '/add/gamma?fail=1', 'POST')[0] == 500
        assert words(db) == ['alpha', 'beta']
        assert fetch(nginx.url + '/words')[1].endswith('words=alpha,beta\n')
        assert fetch(nginx.url + '/nothing')[0] == 404
    pm.stop()
