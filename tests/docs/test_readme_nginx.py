"""The README's nginx block, pasted into a stock nginx in front of `make run`, serves."""

import pytest

from tests.docs.runners import runNginx
from tests.docs.snippets import ROOT, extract

pytestmark = [pytest.mark.nginx, pytest.mark.slow]


def readmeNginxBlock():
    blocks = [s for s in extract(ROOT / 'README.md') if s.lang == 'nginx']
    assert len(blocks) == 1, "README.md should hold one runnable nginx block"
    return blocks[0]


def test_readme_nginx_block_serves_the_demo_as_www_data(demo, procs):
    # Workers as www-data, the system's fastcgi_params, the demo config as
    # written: / and /visits each reach their own route, /nope is a 404.
    runNginx(readmeNginxBlock(), demo, procs)
    status, body = demo.get('/visits')
    assert status == 200 and body.startswith('visit 2 ')   # the one through nginx, then this
