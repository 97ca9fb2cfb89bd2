"""RequestTimeout through real children: the stack of the stuck request is logged,
with its request line and age, before the child is killed; the exit's reason is 'timeout'."""

import re
import threading

from tests.support.procman import Procman
from tests.support.procs import pidAlive, waitFor

APP = 'CGI tests.procman.ops_apps:ops'


def test_request_timeout_logs_the_stack_naming_the_function_that_hung(tmp_path, procs):
    pm = Procman(tmp_path, procs, command=APP, extra="RequestTimeout 1").start()
    [stuck] = pm.children()
    answers = []

    def hang():
        try:
            answers.append(pm.request('/stuck', query='x=1', timeout=30).status)
        except (OSError, EOFError, ValueError) as e:      # the child died under it
            answers.append(type(e).__name__)
    client = threading.Thread(target=hang)
    client.start()
    pm.waitLog('killing it. Its stack:', timeout=20)
    waitFor(lambda: not pidAlive(stuck), 10, message="the stuck child killed")
    client.join(30)
    log = pm.log()
    line = re.search(r'child (\d+) has been busy on one request for ([0-9.]+)s '
                     r'\(RequestTimeout 1\.0s\): GET /stuck\?x=1 HTTP/1\.1; killing it', log)
    assert line, log
    assert int(line.group(1)) == stuck and float(line.group(2)) >= 1.0
    stack = log[line.end():]
    # faulthandler's dump, most recent call first: the app's function, then its caller.
    assert re.search(r'File ".*ops_apps\.py", line \d+ in hangHere', stack), stack
    assert stack.index('in hangHere') < stack.index('in ops')
    waitFor(lambda: re.search(rf'child {stuck} .*\(timeout\)', pm.log()), 10,
             message="the child's exit logged with reason 'timeout'")
    # The pool is repaired and serves again.
    waitFor(lambda: pm.children() and stuck not in pm.children(), 10,
             message="the replacement")
    assert pm.request('/').status == 200
    assert answers and answers[0] != 200
    pm.stop()
