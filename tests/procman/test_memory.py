"""MaxMemory's parts: the size value, reading USS from /proc, and the policy's decisions."""

import os
import types

import pytest

from peak_lite.running.procman import scaling
from peak_lite.running.procman.memory import memoryOf, parseSize


@pytest.mark.parametrize('text, expected', [
    ('512MB', 512 << 20), ('2GB', 2 << 30), ('800KB', 800 << 10), ('1.5gb', 3 << 29),
    ('64M', 64 << 20), ('0', 0)])
def test_sizes(text, expected):
    assert parseSize(text) == expected


@pytest.mark.parametrize('text', ['512', 'lots', '-1MB', '5TB', '', '1e3MB'])
def test_bad_sizes_say_what_is_expected(text):
    with pytest.raises(ValueError, match='such as 512MB'):
        parseSize(text)


def test_memory_of_this_process_and_of_none():
    used = memoryOf(os.getpid())
    assert 0 < used['uss'] <= used['pss'] <= used['rss']
    assert memoryOf(2**22 + 1) is None


def _child(pid, replacing=None):
    return types.SimpleNamespace(pid=pid, replacing=replacing)


def test_memory_decisions_replace_first_at_the_floor():
    policy = scaling.Policy(types.SimpleNamespace(MaxMemory=100))
    live = [_child(1), _child(2), _child(3)]
    usage = {1: 500, 2: 50, 3: 101}
    decisions = policy.memoryDecisions(live, 2, usage)
    assert [(d.action, d.child.pid, d.reason) for d in decisions] == [
        (scaling.RECYCLE, 1, 'memory'), (scaling.REPLACE_FIRST, 3, 'memory')]
    # Already being replaced, or gone (no reading): nothing more.
    assert policy.memoryDecisions([_child(1, 'memory'), _child(2)], 1, {1: 500}) == []
