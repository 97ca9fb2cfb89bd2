"""Run a function in a forked child of the test process and get its result back."""

import json
import os
import traceback


def inChild(function):
    """Fork; run ``function()`` in the child; return its JSON-able result in the parent.

    The child never returns into pytest: it leaves through ``os._exit``.  An
    exception in the child is re-raised in the parent as an AssertionError
    carrying the child's traceback.
    """
    readFd, writeFd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(readFd)
            try:
                payload = {'result': function()}
            except BaseException:
                payload = {'error': traceback.format_exc()}
            with os.fdopen(writeFd, 'w') as out:
                json.dump(payload, out)
        finally:
            os._exit(0)
    os.close(writeFd)
    with os.fdopen(readFd) as inp:
        data = inp.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"child exited with status {status}"
    payload = json.loads(data)
    if 'error' in payload:
        raise AssertionError("in the forked child:\n" + payload['error'])
    return payload['result']
