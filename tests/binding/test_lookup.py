import os.path

import pytest
from zope.component import getGlobalSiteManager
from zope.interface import Interface, implementer
from zope.interface.interfaces import ComponentLookupError

from peak_lite import binding
from peak_lite.binding import PropertyName


class IStore(Interface):
    pass


class ISpecialStore(IStore):
    pass


@implementer(ISpecialStore)
class Store:
    def __init__(self, name='store'):
        self.name = name


class Leaf(binding.Component):
    store = binding.Obtain(IStore)
    level = binding.Obtain(PropertyName('app.level'))


def test_offer_as_answers_descendants_nearest_first():
    class Outer(binding.Component):
        store = binding.Make(lambda: Store('outer'), offerAs=[IStore, 'app.level'])

    class Inner(binding.Component):
        store = binding.Make(lambda: Store('inner'), offerAs=[IStore])

    outer = Outer(None)
    inner = Inner(outer, 'inner')
    leaf = Leaf(inner, 'leaf')
    assert leaf.store.name == 'inner'          # the nearer offer shadows the outer one
    assert leaf.level is outer.store            # property offered further up
    assert Leaf(outer).store.name == 'outer'


def test_offer_of_an_extension_answers_its_bases():
    class Outer(binding.Component):
        special = binding.Make(Store, offerAs=[ISpecialStore])

    outer = Outer(None)
    assert binding.lookupComponent(outer, IStore) is outer.special


def test_offer_shadows_registries_above():
    getGlobalSiteManager().registerUtility(Store('global'), IStore)
    root = binding.Component(None)
    root._ownRegistry().registerUtility(Store('root'), IStore)

    class Mid(binding.Component):
        store = binding.Make(lambda: Store('mid'), offerAs=[IStore])

    assert binding.lookupComponent(Mid(root), IStore).name == 'mid'
    assert binding.lookupComponent(binding.Component(root), IStore).name == 'root'
    assert binding.lookupComponent(binding.Component(None), IStore).name == 'global'


def test_root_registry_chains_to_the_global_registry():
    root = binding.Component(None)
    assert root._ownRegistry().__bases__ == (getGlobalSiteManager(),)
    assert binding.getRegistry(binding.Component(root)) is root._ownRegistry()
    assert binding.getRegistry(binding.Component()) is getGlobalSiteManager()
    assert binding.Component(root)._ownRegistry() is None


def test_query_and_get_style():
    root = binding.Component(None)
    kid = binding.Component(root, 'kid')
    assert binding.lookupComponent(kid, IStore, None) is None
    assert binding.queryComponent(kid, IStore) is None
    with pytest.raises(binding.ComponentLookupError) as info:
        binding.lookupComponent(kid, IStore)
    e = info.value
    assert e.key is IStore and e.tried == ['/kid', '/', 'the global registry']
    assert 'tests.binding.test_lookup.IStore' in str(e) and '/kid, /' in str(e)
    assert isinstance(e, ComponentLookupError)
    with pytest.raises(binding.ComponentLookupError, match="property 'no.such'"):
        binding.lookupComponent(kid, PropertyName('no.such'))


class Tree(binding.Component):
    color = 'red'
    branch = binding.Make(lambda self: Tree(self, 'branch', color='green'))


def test_paths():
    root = Tree(None)
    leaf = binding.Component(root.branch, 'leaf')
    look = binding.lookupComponent
    assert look(leaf, '.') is leaf
    assert look(leaf, '..') is root.branch
    assert look(leaf, '../..') is root
    assert look(leaf, '/') is root
    assert look(leaf, '/branch/color') == 'green'
    assert look(leaf, 'color') == 'green'                  # acquired from the parent
    assert look(root, 'color') == 'red'
    assert look(leaf, 'branch/color') == 'green'           # acquired 'branch', then walked
    assert look(leaf, './/..') is root.branch


def test_path_errors():
    root = Tree(None)
    with pytest.raises(binding.ComponentLookupError) as info:
        binding.lookupComponent(root.branch, 'trunk/x')
    assert "'trunk/x'" in str(info.value) and "'trunk'" in str(info.value)
    assert info.value.tried == ['/branch', '/']
    with pytest.raises(binding.ComponentLookupError, match="no attribute 'leaves' on /branch"):
        binding.lookupComponent(root, '/branch/leaves')
    assert binding.lookupComponent(root, '/branch/leaves', 7) == 7
    with pytest.raises(binding.InvalidKey, match="import:pkg.mod:obj"):
        binding.lookupComponent(root, 'pkg.mod:obj')
    with pytest.raises(binding.InvalidKey):
        binding.lookupComponent(root, '')
    with pytest.raises(binding.InvalidKey):
        binding.lookupComponent(root, 42)
    with pytest.raises(binding.InvalidKey, match='wildcard'):
        binding.lookupComponent(root, PropertyName('a.*'))


def test_import_url_is_built_in():
    root = binding.Component(None)
    assert binding.lookupComponent(root, 'import:os.path:join') is os.path.join
    assert binding.lookupComponent(root, 'IMPORT:os.path.join') is os.path.join


def test_url_schemes_come_from_properties():
    made = []

    def factory(parent, url):
        made.append((parent, url))
        return url.upper()

    class Root(binding.Component):
        scheme = binding.Make(lambda: factory, offerAs=['peak.naming.schemes.test-db'])
        viaString = binding.Make(lambda: 'tests.binding.test_lookup:pairFactory',
                                 offerAs=['peak.naming.schemes.pair'])

    root = Root(None)
    kid = binding.Component(root, 'kid')
    assert binding.lookupComponent(kid, 'test-db://x/y') == 'TEST-DB://X/Y'
    assert made == [(kid, 'test-db://x/y')]
    assert binding.lookupComponent(kid, 'pair:x') == (kid, 'pair:x')


def pairFactory(parent, url):
    return parent, url


def test_unknown_url_scheme():
    root = binding.Component(None)
    with pytest.raises(binding.ComponentLookupError,
                       match=r"unknown URL scheme 'nope'.*peak\.naming\.schemes\.nope"):
        binding.lookupComponent(root, 'nope://x')
    assert binding.lookupComponent(root, 'nope://x', 'dflt') == 'dflt'


def test_property_names():
    assert PropertyName('a.b-c.d_1') == 'a.b-c.d_1'
    assert list(PropertyName('a.b.c').matchPatterns()) == ['a.b.c', 'a.b.*', 'a.*', '*']
    assert PropertyName('a.*').isWildcard()
    for bad in ('', 'a..b', 'a b', '.a', 'a.', 'a*', 'a.*.b', 42):
        with pytest.raises(binding.InvalidKey):
            PropertyName(bad)
    assert binding.splitURL('sqlite:///x.db') == ('sqlite', 'sqlite:///x.db')
    assert binding.splitURL('pkg.mod:obj') is None
    assert binding.splitURL('a/b') is None
