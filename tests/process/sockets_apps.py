"""Apps that socket tests run in procman's children."""

import subprocess


def spawnSleeper(environ, start_response):
    """Start a long-lived grandchild, as an app that shells out does; answer its pid."""
    sleeper = subprocess.Popen(['sleep', '300'])
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [f"{sleeper.pid}\n".encode()]
