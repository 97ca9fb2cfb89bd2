"""buildCommitted and describeFailure: one committed build, errors that point at the author."""

import pytest
import transaction

from peak_lite import binding
from peak_lite.running.assembly import authorFrame, buildCommitted, describeFailure
from peak_lite.running.interfaces import LoadError


class Recorder:
    """A data manager that records what happened to its transaction."""

    def __init__(self, events, failCommit=False):
        self.events, self.failCommit = events, failCommit
        self.transaction_manager = transaction.manager

    def abort(self, txn):
        self.events.append('abort')

    def tpc_begin(self, txn):
        pass

    def commit(self, txn):
        pass

    def tpc_vote(self, txn):
        if self.failCommit:
            raise RuntimeError("vote no")

    def tpc_finish(self, txn):
        self.events.append('commit')

    def tpc_abort(self, txn):
        self.events.append('abort')

    def sortKey(self):
        return 'recorder'


def test_the_build_commits_before_returning():
    events = []

    def build():
        transaction.get().join(Recorder(events))
        return 'built'
    assert buildCommitted(build) == 'built' and events == ['commit']


def test_a_failing_build_aborts_and_raises_its_own_error():
    events = []

    def build():
        transaction.get().join(Recorder(events))
        raise KeyError('acc-missing')
    with pytest.raises(KeyError):
        buildCommitted(build)
    assert events == ['abort']


def test_a_nested_build_joins_the_outer_transaction():
    events, seen = [], []

    def inner():
        seen.append(transaction.get())
        transaction.get().join(Recorder(events))
        return 'inner'

    def outer():
        seen.append(transaction.get())
        result = buildCommitted(inner)
        assert events == []         # not committed yet: the outer build goes on
        return result
    assert buildCommitted(outer) == 'inner'
    assert seen[0] is seen[1] and events == ['commit']


def test_a_failed_commit_is_a_load_error():
    events = []

    def build():
        transaction.get().join(Recorder(events, failCommit=True))
    with pytest.raises(LoadError, match="committing .* failed: .*RuntimeError: vote no"):
        buildCommitted(build)
    assert 'abort' in events


class Store(binding.Component):
    cache = binding.Make(lambda self: {}['acc-missing'], uponAssembly=True)


class Shop(binding.Component):
    store = binding.Make(Store, uponAssembly=True)


def test_describe_failure_names_the_authors_frame_and_the_component_path():
    with pytest.raises(KeyError) as info:
        Shop(None)
    line = describeFailure(info.value)
    assert line.startswith(f"tests/running/test_assembly.py:{Store.cache.recipe.__code__.co_firstlineno}"
                           f" in <lambda>: KeyError: 'acc-missing'")
    assert line.endswith("(at /store.cache)")
    # A wrapper made from it in peak_lite (here: not raised, so it has no frame
    # of its own) is described by the error the author's code raised.
    wrapped = LoadError("wrapped")
    wrapped.__cause__ = info.value
    assert describeFailure(wrapped) == line
    assert authorFrame(wrapped).name == '<lambda>'


def test_an_error_outside_the_authors_code_is_described_as_it_is():
    error = LoadError("no such thing")
    assert describeFailure(error) == "LoadError: no such thing"
