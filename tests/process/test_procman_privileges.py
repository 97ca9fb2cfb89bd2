"""User/Group: children drop privileges after the manager has bound the socket; the socket
file gets the mode its Listen line asks for."""

import grp
import os
import pwd
import stat

import pytest

from tests.support.procman import Procman
from tests.support.procs import waitFor

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="dropping privileges needs root")


def test_children_run_as_user_and_group_the_socket_has_its_mode(tmp_path, procs):
    user, group = pwd.getpwnam('nobody'), grp.getgrnam('nogroup')
    sock = tmp_path / 'priv.sock'
    pm = Procman(tmp_path, procs, command='CGI tests.procman.apps:whoami', listen=False,
                 extra=f"Listen unix:{sock}:0666\nUser nobody\nGroup nogroup", prefork=2)
    pm.socket = str(sock)
    pm.start()
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o666
    r = pm.request('/')
    assert r.status == 200
    assert r.body == f"uid={user.pw_uid} gid={group.gr_gid}\n".encode()
    for kid in pm.children():
        # A child drops its privileges right after the fork: wait for that, then look.
        ids = waitFor(lambda: (lambda i: i if i['Uid'][0] != '0' else None)(_ids(kid)), 10,
                       message=f"child {kid} to drop privileges")
        assert ids['Uid'][0] == str(user.pw_uid) and ids['Gid'][0] == str(group.gr_gid)
        # initgroups: nobody's own groups, none of root's
        assert ids['Groups'] == [str(g) for g in sorted(os.getgrouplist('nobody', group.gr_gid))]
    assert os.stat(f'/proc/{pm.pid}').st_uid == 0     # the manager keeps its own
    pm.stop()


def _ids(pid):
    with open(f'/proc/{pid}/status') as f:
        return {line.split(':')[0]: line.split()[1:] for line in f
                if line.startswith(('Uid:', 'Gid:', 'Groups:'))}
