"""nginx in front of a server under test, from a generated config on 127.0.0.1.

    front = Front(workdir, server)      # server.protocol says fastcgi_pass or proxy_pass
    front.start()                       # a free port; waits until it answers
    front.url                           # http://127.0.0.1:PORT
    front.stop()

``keepConn`` sets ``fastcgi_keep_conn`` (FastCGI) and nginx keeps up to 16
idle upstream connections; HTTP upstreams always get ``keepalive 16``
(servers that do not keep connections alive simply close them).
"""

import os
import shutil
import socket

from bench.procs import BenchError, Started, waitFor

FASTCGI_PARAMS = """
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param CONTENT_TYPE $content_type;
            fastcgi_param CONTENT_LENGTH $content_length;
            fastcgi_param SCRIPT_NAME "";
            fastcgi_param PATH_INFO $uri;
            fastcgi_param REQUEST_URI $request_uri;
            fastcgi_param SERVER_PROTOCOL $server_protocol;
            fastcgi_param GATEWAY_INTERFACE CGI/1.1;
            fastcgi_param REMOTE_ADDR $remote_addr;
            fastcgi_param REMOTE_PORT $remote_port;
            fastcgi_param SERVER_ADDR $server_addr;
            fastcgi_param SERVER_PORT $server_port;
            fastcgi_param SERVER_NAME $server_name;
"""


def nginxBinary():
    found = shutil.which('nginx') or ('/usr/sbin/nginx' if os.path.exists('/usr/sbin/nginx')
                                      else None)
    if found is None:
        raise BenchError("nginx not found: apt-get install nginx-light")
    return found


def freePort():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Front:
    """See the module docstring."""

    def __init__(self, workdir, server, keepConn=True):
        self.server = server
        self.keepConn = keepConn
        self.dir = os.path.join(server.dir, 'nginx')
        os.makedirs(self.dir, exist_ok=True)
        self.port = None
        self.proc = None

    @property
    def url(self):
        return f'http://127.0.0.1:{self.port}'

    def location(self):
        if self.server.protocol == 'fastcgi':
            keep = 'on' if self.keepConn else 'off'
            return (f"fastcgi_pass backend;\n            fastcgi_keep_conn {keep};\n"
                    f"            fastcgi_read_timeout 120s;\n{FASTCGI_PARAMS}")
        return ("proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n"
                "            proxy_set_header Host $host;\n"
                "            proxy_read_timeout 120s;\n"
                "            proxy_pass http://backend;\n")

    def config(self):
        d = self.dir
        user = 'user root;' if os.geteuid() == 0 else ''
        keep = 'keepalive 16;' if (self.keepConn or self.server.protocol == 'http') else ''
        temps = '\n    '.join(f'{kind}_temp_path "{d}/{kind}_temp";' for kind in (
            'client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'))
        return f"""
{user}
worker_processes 1;
pid "{d}/nginx.pid";
error_log "{d}/error.log" warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    {temps}
    upstream backend {{ server unix:{self.server.socket}; {keep} }}
    server {{
        listen 127.0.0.1:{self.port} backlog=1024;
        location / {{
            {self.location()}
        }}
    }}
}}
"""

    def start(self, timeout=10.0):
        binary = nginxBinary()
        self.port = freePort()
        path = os.path.join(self.dir, 'nginx.conf')
        with open(path, 'w') as f:
            f.write(self.config())
        self.proc = Started([binary, '-p', self.dir, '-e', os.path.join(self.dir, 'error.log'),
                             '-c', path, '-g', 'daemon off;'], os.path.join(self.dir, 'out.log'))
        try:
            waitFor(lambda: self._answers() or self.proc.returncode is not None, timeout,
                    f"nginx on port {self.port}")
        except BenchError:
            self.stop()
            raise
        if self.proc.returncode is not None:
            raise BenchError(f"nginx exited at start: {self.errors()}")
        return self

    def errors(self):
        try:
            with open(os.path.join(self.dir, 'error.log'), errors='replace') as f:
                return f.read()[-2000:]
        except OSError:
            return ''

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
