import pytest

from peak_lite import binding


def recorder():
    events = []

    class Node(binding.Component):
        def uponAssembly(self):
            events.append(('hook', binding.getComponentPath(self)))

    return events, Node


def test_order_children_then_bindings_then_hook():
    events, Node = recorder()

    class App(Node):
        cache = binding.Make(lambda: events.append(('cache', '/')) or {}, uponAssembly=True)
        lazy = binding.Make(lambda: events.append(('lazy', '/')))

    app = App()                     # not yet assembled: no root above it
    Node(app, 'a')
    b = Node(app, 'b')
    Node(b, 'b1')
    assert events == []
    app.setParentComponent(None)
    assert events == [('hook', '/a'), ('hook', '/b/b1'), ('hook', '/b'),
                      ('cache', '/'), ('hook', '/')]
    assert app.isAssembled()


def test_assembly_runs_after_the_whole_init():
    seen = []

    class App(binding.Component):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            self.ready = True

        def uponAssembly(self):
            seen.append(self.ready)

    App(None)
    assert seen == [True]


def test_exactly_once():
    events, Node = recorder()
    root = Node(None)
    kid = Node(root, 'kid')
    kid.setParentComponent(root, 'kid')
    assert kid.assemble() and root.assemble()
    assert events == [('hook', '/'), ('hook', '/kid')]


def test_late_children_are_assembled_at_once():
    events, Node = recorder()

    class App(Node):
        late = binding.Make(lambda self: Node(self, 'late'))

    app = App(None)
    assert events == [('hook', '/')]
    Node(app, 'now')
    assert events[-1] == ('hook', '/now')
    app.late
    assert events[-1] == ('hook', '/late')


def test_children_made_during_assembly_are_assembled_at_once():
    events, Node = recorder()

    class App(Node):
        db = binding.Make(lambda self: Node(self, 'db'), uponAssembly=True)

    App(None)
    assert events == [('hook', '/db'), ('hook', '/')]


def test_failing_hook_leaves_component_unassembled_and_retryable():
    events, Node = recorder()
    attempts = []

    class Flaky(Node):
        def uponAssembly(self):
            attempts.append(1)
            if len(attempts) == 1:
                raise RuntimeError('database not ready')
            super().uponAssembly()

    app = Node()
    Node(app, 'ok')
    flaky = Flaky(app, 'flaky')
    with pytest.raises(RuntimeError, match='not ready'):
        app.setParentComponent(None)
    assert not flaky.isAssembled() and not app.isAssembled()
    assert events == [('hook', '/ok')]
    assert app.assemble()
    assert flaky.isAssembled()
    assert events == [('hook', '/ok'), ('hook', '/flaky'), ('hook', '/')]
    assert len(attempts) == 2


def test_failing_upon_assembly_binding_is_retried_but_done_ones_are_not():
    made = []

    class App(binding.Component):
        first = binding.Make(lambda: made.append('first') or 1, uponAssembly=True)
        second = binding.Make(lambda self: self.source(), uponAssembly=True)

        def source(self):
            made.append('second')
            if made.count('second') == 1:
                raise OSError('cache file missing')
            return 2

    app = App()
    with pytest.raises(OSError):
        app.setParentComponent(None)
    assert not app.isAssembled()
    assert app.assemble()
    assert made == ['first', 'second', 'second']


def test_component_under_an_unassembled_parent_waits():
    events, Node = recorder()
    top = Node()
    mid = Node(top, 'mid')
    Node(mid, 'leaf')
    assert not mid.assemble()
    assert events == []
    top.setParentComponent(None)
    assert events == [('hook', '/mid/leaf'), ('hook', '/mid'), ('hook', '/')]


def test_reparenting_a_suggested_child_moves_its_assembly():
    events, Node = recorder()
    first = Node()
    kid = Node()
    kid.setParentComponent(first, 'kid', suggest=True)
    second = Node(None)
    kid.setParentComponent(second, 'kid')
    assert ('hook', '/kid') in events
    first.setParentComponent(None)
    assert events.count(('hook', '/kid')) == 1


def test_a_failing_assembly_hook_notes_its_component_path():
    class Cache(binding.Component):
        def uponAssembly(self):
            raise KeyError('acc-missing')

    class Store(binding.Component):
        cache = binding.Make(Cache, uponAssembly=True)

    with pytest.raises(KeyError) as info:
        Store(None, 'store')
    assert binding.failureLocation(info.value) == '/cache'
