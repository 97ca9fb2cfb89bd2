"""A real nginx on 127.0.0.1, from a generated config in a temporary directory.

    nginx = Nginx(tmp_path, fastcgi_pass='unix:/tmp/x/app.sock', keep_conn=True)
    nginx.start()                      # waits until the port answers
    urllib.request.urlopen(nginx.url + '/path')
    nginx.errorLogText()             # FastCGI stderr lands here
    nginx.stop()                       # kills its process group, checks nothing is left

``fastcgi_pass`` and ``proxy_pass`` take ``unix:/path`` or ``host:port``
(proxy_pass may also be a full ``http://...`` URL).  Everything nginx writes
(pid, logs, temp files) stays inside the directory.
"""

import os
import shutil
import socket

from tests.support.procs import Proc, waitFor

NGINX = shutil.which('nginx') or '/usr/sbin/nginx'

FASTCGI_PARAMS = """
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param CONTENT_TYPE $content_type;
            fastcgi_param CONTENT_LENGTH $content_length;
            fastcgi_param SCRIPT_NAME "";
            fastcgi_param PATH_INFO $uri;
            fastcgi_param REQUEST_URI $request_uri;
            fastcgi_param SERVER_PROTOCOL $server_protocol;
            fastcgi_param REQUEST_SCHEME $scheme;
            fastcgi_param GATEWAY_INTERFACE CGI/1.1;
            fastcgi_param SERVER_SOFTWARE nginx/$nginx_version;
            fastcgi_param REMOTE_ADDR $remote_addr;
            fastcgi_param REMOTE_PORT $remote_port;
            fastcgi_param SERVER_ADDR $server_addr;
            fastcgi_param SERVER_PORT $server_port;
            fastcgi_param SERVER_NAME $server_name;
"""


def freePort():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Nginx:
    """See the module docstring.  ``extra_location`` and ``extra_http`` are raw config text."""

    def __init__(self, tmpdir, fastcgi_pass=None, keep_conn=False, proxy_pass=None,
                 workers=1, extra_location='', extra_http=''):
        if (fastcgi_pass is None) == (proxy_pass is None):
            raise ValueError("give exactly one of fastcgi_pass and proxy_pass")
        self.dir = os.path.join(str(tmpdir), 'nginx')
        self.fastcgi_pass = fastcgi_pass
        self.keep_conn = keep_conn
        self.proxy_pass = proxy_pass
        self.workers = workers
        self.extra_location = extra_location
        self.extra_http = extra_http
        self.port = None
        self.proc = None

    @property
    def url(self):
        return f'http://127.0.0.1:{self.port}'

    @property
    def errorLog(self):
        return os.path.join(self.dir, 'error.log')

    def errorLogText(self):
        try:
            with open(self.errorLog, encoding='utf-8', errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def _location(self):
        if self.fastcgi_pass is not None:
            keep = 'on' if self.keep_conn else 'off'
            return (f"fastcgi_pass backend;\n            fastcgi_keep_conn {keep};\n"
                    f"{FASTCGI_PARAMS}")
        target = self.proxy_pass
        if not target.startswith('http'):
            target = 'http://backend'
        return ("proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n"
                "            proxy_set_header Host $host;\n"
                f"            proxy_pass {target};\n")

    def _upstream(self):
        target = self.fastcgi_pass or self.proxy_pass
        if target.startswith('http'):
            return ''
        keepalive = 'keepalive 16;' if (self.keep_conn or self.proxy_pass) else ''
        return f"upstream backend {{ server {target}; {keepalive} }}"

    def config(self):
        d = self.dir
        user = 'user root;' if os.geteuid() == 0 else ''
        temps = '\n    '.join(f'{kind}_temp_path "{d}/{kind}_temp";' for kind in (
            'client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'))
        return f"""
{user}
worker_processes {self.workers};
pid "{d}/nginx.pid";
error_log "{d}/error.log" info;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    {temps}
    client_max_body_size 512m;
    {self._upstream()}
    {self.extra_http}
    server {{
        listen 127.0.0.1:{self.port} backlog=1024;
        server_name localhost;
        location / {{
            {self._location()}
            {self.extra_location}
        }}
    }}
}}
"""

    def start(self, timeout=10.0):
        os.makedirs(self.dir, exist_ok=True)
        for attempt in range(5):
            self.port = freePort()
            with open(os.path.join(self.dir, 'nginx.conf'), 'w') as f:
                f.write(self.config())
            self.proc = Proc([NGINX, '-p', self.dir, '-e', self.errorLog,
                              '-c', os.path.join(self.dir, 'nginx.conf'), '-g', 'daemon off;'])
            try:
                waitFor(lambda: self._answers() or self.proc.returncode is not None,
                         timeout, message=f"nginx to listen on port {self.port}")
            except AssertionError:
                self.stop()
                raise AssertionError(f"nginx did not start:\n{self.errorLogText()}") from None
            if self.proc.returncode is None:
                return self
            self.proc.stop()
            if 'Address already in use' not in self.errorLogText():
                break
        raise AssertionError(f"nginx exited at start:\n{self.errorLogText()}")

    def _answers(self):
        try:
            socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
