import pytest
from zope.interface.verify import verifyClass, verifyObject

from peak_lite import binding
from peak_lite.binding import NOT_GIVEN


class Thing(binding.Component):
    size = 3
    child = binding.Make(binding.Component)


def test_component_implements_its_interfaces():
    verifyClass(binding.IComponent, binding.Component)
    verifyObject(binding.IComponent, binding.Component(None))
    verifyObject(binding.IComponentFactory, binding.Component)
    verifyObject(binding.IComponentFactory, Thing)


def test_bindings_implement_IAttributeBinding():
    for b in (binding.Make(list), binding.Obtain('x'), binding.Require('doc'),
              binding.Delegate('x')):
        verifyObject(binding.IAttributeBinding, b)


def test_parent_defaults_to_not_given_and_none_makes_a_root():
    loose = binding.Component()
    assert loose.getParentComponent() is NOT_GIVEN
    assert not loose.isAssembled()
    root = binding.Component(None)
    assert root.getParentComponent() is None
    assert root.isAssembled()


def test_keyword_arguments_set_attributes_the_class_defines():
    t = Thing(None, size=5)
    assert t.size == 5
    assert Thing.size == 3


def test_unknown_keyword_argument_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        Thing(None, colour='red')


def test_parent_set_once():
    a, b = binding.Component(None), binding.Component(None)
    c = binding.Component(a, 'c')
    c.setParentComponent(a, 'c')            # the same parent again is fine
    with pytest.raises(binding.ParentAlreadySet, match='already has parent'):
        c.setParentComponent(b)
    assert c.getParentComponent() is a


def test_suggested_parent_can_be_replaced_and_suggestion_never_overrides():
    a, b = binding.Component(None), binding.Component(None)
    c = binding.Component()
    c.setParentComponent(a, 'x', suggest=True)
    c.setParentComponent(b, 'y', suggest=True)        # ignored
    assert c.getParentComponent() is a
    c.setParentComponent(b, 'y')                      # explicit wins over a suggestion
    assert c.getParentComponent() is b
    assert c.getComponentName() == 'y'
    with pytest.raises(binding.ParentAlreadySet):
        c.setParentComponent(a)


def test_made_component_gets_parent_and_name():
    t = Thing(None)
    assert t.child.getParentComponent() is t
    assert t.child.getComponentName() == 'child'
    assert binding.getComponentPath(t.child) == '/child'


def test_keyword_value_gets_the_component_suggested_as_parent():
    kid = binding.Component()
    t = Thing(None, child=kid)
    assert t.child is kid
    assert kid.getParentComponent() is t


def test_component_paths_and_roots():
    root = binding.Component(None)
    a = binding.Component(root, 'a')
    b = binding.Component(a, 'b')
    anon = binding.Component(b)
    assert binding.getComponentPath(root) == '/'
    assert binding.getComponentPath(b) == '/a/b'
    assert binding.getComponentPath(anon) == '/a/b/<Component>'
    assert binding.getRootComponent(anon) is root
    assert binding.getParentComponent(b) is a
    assert binding.getParentComponent(root) is None
    loose = binding.Component(componentName='loose')
    assert binding.getComponentPath(binding.Component(loose, 'x')) == 'loose/x'
    assert binding.getParentComponent(object()) is None
