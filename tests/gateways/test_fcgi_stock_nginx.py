"""The FastCGI gateway behind nginx configured with the distribution's own fastcgi_params.

Debian's ``/etc/nginx/fastcgi_params`` sends ``SCRIPT_NAME $fastcgi_script_name``
(the whole path) and no PATH_INFO; the gateway must still route by path.
"""

import os
import urllib.request

import pytest

from tests.support.nginx import Nginx

pytestmark = [pytest.mark.nginx]

STOCK_PARAMS = '/etc/nginx/fastcgi_params'


class StockNginx(Nginx):
    """nginx whose location is only ``fastcgi_pass`` and ``include fastcgi_params``."""

    def _location(self):
        return f"fastcgi_pass backend;\n            include {STOCK_PARAMS};\n"


@pytest.mark.skipif(not os.path.exists(STOCK_PARAMS),
                    reason=f"{STOCK_PARAMS} comes with the distribution's nginx package")
def test_each_path_reaches_the_app_through_stock_fastcgi_params(serve, tmp_path):
    proc, spec = serve('FastCGI', 'tests.gateways.apps:echo')
    nginx = StockNginx(tmp_path, fastcgi_pass=spec).start()
    try:
        for path, query in [('/', ''), ('/visits', 'n=1'), ('/a/b%20c', '')]:
            url = nginx.url + path + ('?' + query if query else '')
            with urllib.request.urlopen(url, timeout=10) as resp:
                body = resp.read().decode()
            assert f"path={urllib.request.unquote(path)}\n" in body, body
            assert f"query={query}\n" in body
    finally:
        nginx.stop()
