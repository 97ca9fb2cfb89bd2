import pytest
from zope.interface import Interface, implementer

from peak_lite import binding


class IGreeter(Interface):
    def greet():
        """Say hello."""


@implementer(IGreeter)
class Greeter:
    def greet(self):
        return 'hello'


class Named:
    def __init__(self, name):
        self.name = name


def makeCounter():
    calls = []

    def recipe():
        calls.append(1)
        return len(calls)
    return recipe, calls


def test_make_is_lazy_and_cached_per_instance():
    recipe, calls = makeCounter()

    class C(binding.Component):
        value = binding.Make(recipe)

    a, b = C(None), C(None)
    assert calls == []
    assert a.value == 1 and a.value == 1
    assert b.value == 2
    assert len(calls) == 2


def test_make_recipe_kinds():
    class C(binding.Component):
        fromType = binding.Make(dict)
        fromZeroArg = binding.Make(lambda: 'zero')
        fromSelf = binding.Make(lambda self: self.fromZeroArg + '!')
        fromImport = binding.Make('collections:OrderedDict')
        fromComponentClass = binding.Make(binding.Component)

    c = C(None)
    assert c.fromType == {}
    assert c.fromZeroArg == 'zero'
    assert c.fromSelf == 'zero!'
    assert type(c.fromImport).__name__ == 'OrderedDict'
    assert c.fromComponentClass.getParentComponent() is c


def test_make_rejects_a_bad_recipe():
    with pytest.raises(binding.BindingError, match='Make.. needs'):
        binding.Make(42)


def test_assignment_and_deletion():
    recipe, calls = makeCounter()

    class C(binding.Component):
        value = binding.Make(recipe)

    c = C(None)
    c.value = 'set'
    assert c.value == 'set'
    del c.value
    assert c.value == 1


def test_require_names_the_attribute_and_its_doc():
    class Server(binding.Component):
        port = binding.Require("the TCP port to listen on")

    with pytest.raises(binding.RequirementNotMet) as info:
        Server(None).port
    msg = str(info.value)
    assert 'Server.port' in msg and 'the TCP port to listen on' in msg and 'port=' in msg
    assert not hasattr(Server(None), 'port')
    assert Server(None, port=8080).port == 8080


def test_obtain_by_path_and_default():
    class Child(binding.Component):
        setting = binding.Obtain('setting')
        missing = binding.Obtain('nothing/here', default='dflt')

    class Parent(binding.Component):
        setting = 'from parent'
        child = binding.Make(Child)

    p = Parent(None)
    assert p.child.setting == 'from parent'
    assert p.child.missing == 'dflt'


def test_obtain_failure_names_the_attribute_and_key():
    class Child(binding.Component):
        greeter = binding.Obtain(IGreeter)

    with pytest.raises(binding.ComponentLookupError) as info:
        Child(binding.Component(None), 'kid').greeter
    msg = str(info.value)
    assert msg.startswith('Child.greeter:')
    assert 'IGreeter' in msg and '/kid' in msg


def test_delegate():
    class C(binding.Component):
        target = binding.Make(lambda: Named('bob'))
        name = binding.Delegate('target')

    assert C(None).name == 'bob'


def test_adapt_to_uses_the_service_area_registry():
    class C(binding.Component):
        greeter = binding.Make(lambda: Named('x'), adaptTo=IGreeter)
        already = binding.Make(Greeter, adaptTo=IGreeter)

    root = binding.Component(None)
    root._ownRegistry().registerAdapter(lambda ob: Greeter(), (Named,), IGreeter)
    c = C(root)
    assert c.greeter.greet() == 'hello'
    assert isinstance(c.already, Greeter)
    with pytest.raises(binding.AdaptationError, match='cannot adapt .* to .*IGreeter'):
        C(binding.Component(None)).greeter


def test_suggest_parent_false_leaves_the_value_alone():
    class C(binding.Component):
        kid = binding.Make(binding.Component, suggestParent=False)
        shared = binding.Make(lambda: binding.Component(), suggestParent=False)

    c = C(None)
    assert c.kid.getParentComponent() is c     # component factories get their parent explicitly
    assert c.shared.getParentComponent() is binding.NOT_GIVEN


def test_circular_definition_is_reported():
    class C(binding.Component):
        a = binding.Make(lambda self: self.b)
        b = binding.Make(lambda self: self.a)

    with pytest.raises(binding.CircularDefinition, match='C.a depends on itself'):
        C(None).a


def test_bad_options_are_rejected():
    with pytest.raises(binding.BindingError, match='offerAs'):
        binding.Make(list, offerAs=[42])
    with pytest.raises(binding.BindingError, match='adaptTo'):
        binding.Make(list, adaptTo=list)
    with pytest.raises(binding.InvalidKey):
        binding.Make(list, offerAs=['not a name'])


def test_a_misspelled_binding_keyword_names_the_class_and_suggests_the_right_one():
    with pytest.raises(binding.BindingError) as info:
        class Store(binding.Component):
            cache = binding.Make(dict, uponAsembly=True)
    assert str(info.value).startswith(f"Make(...) in class {__name__}.test_a_misspelled")
    assert str(info.value).endswith(
        "<locals>.Store: unknown keyword uponAsembly=; did you mean uponAssembly=?")
    with pytest.raises(binding.BindingError, match=r"did you mean default=\?"):
        binding.Obtain('x', defualt=1)
    with pytest.raises(binding.BindingError, match="the options are offerAs, uponAssembly"):
        binding.Require("doc", colour='red')


def test_an_error_computing_a_binding_notes_the_innermost_binding_path():
    class Inner(binding.Component):
        cache = binding.Make(lambda self: 1 / 0)

    class Outer(binding.Component):
        inner = binding.Make(Inner)
        total = binding.Make(lambda self: self.inner.cache)

    outer = Outer(None)
    with pytest.raises(ZeroDivisionError) as info:
        outer.total
    assert binding.failureLocation(info.value) == '/inner.cache'
