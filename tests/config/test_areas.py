import os

import pytest
from zope.component import getGlobalSiteManager
from zope.interface import Interface, implementer
from zope.interface.verify import verifyObject

from peak_lite import binding, config

CALLS = []


def counted(value):
    CALLS.append(value)
    return value


class IClock(Interface):
    pass


@implementer(IClock)
class Clock(binding.Component):
    pass


class Service(binding.Component):
    pass


def test_service_area_implements_IServiceArea():
    verifyObject(config.IServiceArea, config.ServiceArea(None))
    verifyObject(config.IServiceArea, config.makeRoot())


def test_make_root_loads_builtin_then_environment_then_arguments(writeIni):
    env1 = writeIni('env1.ini', '[app]\nname = "env1"\nfrom1 = 1\n')
    env2 = writeIni('env2.ini', '[app]\nname = "env2"\n')
    given = writeIni('given.ini', '[app]\nname = "given"\n')
    root = config.makeRoot([given], environ={'PEAK_CONFIG': os.pathsep.join([env1, '', env2])})
    assert root.getParentComponent() is None and root.isAssembled()
    assert config.lookupProperty(root, 'app.name') == 'given'
    assert config.lookupProperty(root, 'app.from1') == 1
    assert config.lookupProperty(root, 'peak.naming.schemes.sqlite') == \
        'peak_lite.storage.sqlite:SQLiteConnection.fromURL'


def test_make_root_reads_os_environ_by_default(writeIni, monkeypatch):
    monkeypatch.setenv('PEAK_CONFIG', writeIni('e.ini', '[app]\nx = 5\n'))
    assert config.lookupProperty(config.makeRoot(), 'app.x') == 5
    assert config.lookupProperty(config.makeRoot(environ={}), 'app.x', None) is None


def test_values_are_lazy_and_evaluated_once_per_area(writeIni):
    CALLS.clear()
    path = writeIni('a.ini', '''[Import on Demand]
helpers = "tests.config.test_areas"
[app]
value = helpers.counted(targetObj)
''')
    root = config.makeRoot([path])
    assert CALLS == []
    kid = binding.Component(root, 'kid')
    assert config.lookupProperty(kid, 'app.value') is kid       # targetObj is the requester
    assert config.lookupProperty(root, 'app.value') is kid      # cached in the area
    assert CALLS == [kid]
    other = config.makeRoot([path])
    assert config.lookupProperty(other, 'app.value') is other
    assert CALLS == [kid, other]


def test_wildcards_nearest_wins_and_rule_suffix():
    root = config.makeRoot()
    root.loadIniText('''[app]
* = "app:" + ruleSuffix
db.* = "db:" + ruleSuffix + ":" + propertyName
db.main = "exact"
''')
    look = config.lookupProperty
    assert look(root, 'app.db.main') == 'exact'
    assert look(root, 'app.db.other') == 'db:other:app.db.other'
    assert look(root, 'app.x.y') == 'app:x.y'
    assert look(root, 'elsewhere', 0) == 0


def test_nearer_area_wildcard_beats_ancestor_exact_rule():
    root = config.makeRoot()
    root.loadIniText('[app]\nname = "root"\nonly = "root-only"\n')
    sub = config.ServiceArea(root, 'sub')
    sub.loadIniText('[app]\n* = "sub"\n')
    assert config.lookupProperty(sub, 'app.name') == 'sub'
    assert config.lookupProperty(root, 'app.name') == 'root'
    sub2 = config.ServiceArea(root, 'sub2')
    assert config.lookupProperty(sub2, 'app.only') == 'root-only'


def test_later_definitions_override_and_drop_cached_values():
    root = config.makeRoot()
    root.loadIniText('[app]\nx = 1\n')
    assert config.lookupProperty(root, 'app.x') == 1
    root.loadIniText('[app]\nx = 2\n')
    assert config.lookupProperty(root, 'app.x') == 2
    root.loadIniText('[app]\n* = 3\n')
    assert config.lookupProperty(root, 'app.x') == 2
    assert 'app.*' in root.definedProperties()


def test_load_settings_from_is_relative_to_the_including_file(writeIni):
    writeIni('inner.ini', '[app]\ninner = "yes"\n')
    outer = writeIni('outer.ini', '[Load Settings From]\nfile = "inner.ini"\n[app]\nouter = 1\n')
    root = config.makeRoot([outer])
    assert config.lookupProperty(root, 'app.inner') == 'yes'


def test_load_settings_from_errors(writeIni):
    missing = writeIni('m.ini', '[Load Settings From]\nfile = "nope.ini"\n')
    with pytest.raises(config.ConfigError, match=r'm\.ini:2: \[Load Settings From\] file: '
                                                 r'cannot read configuration file'):
        config.makeRoot([missing])
    loop = writeIni('loop.ini', '[Load Settings From]\nfile = "loop.ini"\n')
    with pytest.raises(config.ConfigError, match='include each other'):
        config.makeRoot([loop])
    notstr = writeIni('n.ini', '[Load Settings From]\nfile = 42\n')
    with pytest.raises(config.ConfigValueError, match=r'n\.ini:2: .*expected a file name'):
        config.makeRoot([notstr])


def test_component_factories_one_instance_per_area():
    root = config.makeRoot()
    root.loadIniText('''[Component Factories]
tests.config.test_areas.IClock = "tests.config.test_areas:Clock"
''', 'f.ini')
    kid = binding.Component(root, 'kid')
    clock = binding.lookupComponent(kid, IClock)
    assert isinstance(clock, Clock)
    assert clock.getParentComponent() is root
    assert binding.lookupComponent(root, IClock) is clock
    other = config.makeRoot()
    with pytest.raises(binding.ComponentLookupError):
        binding.lookupComponent(other, IClock)


def test_component_factories_errors():
    root = config.makeRoot()
    with pytest.raises(config.ConfigSyntaxError, match=r'f\.ini:2: \[Component Factories\] '
                                                       r'no\.such\.IFace: cannot import'):
        root.loadIniText('[Component Factories]\nno.such.IFace = "x"\n', 'f.ini')
    with pytest.raises(config.ConfigSyntaxError, match='not an interface'):
        root.loadIniText('[Component Factories]\nos.path.join = "x"\n', 'f.ini')


def test_named_services_are_shared_per_area():
    root = config.makeRoot()
    root.loadIniText('''[Named Services]
app.service = "tests.config.test_areas:Service"
app.other = lambda: ["made"]
''')
    a = config.lookupProperty(binding.Component(root), 'app.service')
    assert isinstance(a, Service) and a.getParentComponent() is root
    assert config.lookupProperty(root, 'app.service') is a
    assert config.lookupProperty(root, 'app.other') == ['made']
    sub = config.ServiceArea(root, 'sub')
    sub.loadIniText('[Named Services]\napp.service = "tests.config.test_areas:Service"\n')
    assert config.lookupProperty(sub, 'app.service') is not a


def test_import_on_demand_is_inherited_and_lazy():
    root = config.makeRoot()
    root.loadIniText('[Import on Demand]\nposixpath = "posixpath"\nbogus = "no_such_module_x"\n')
    sub = config.ServiceArea(root, 'sub')
    sub.loadIniText('[app]\nsep = posixpath.sep\nbad = bogus.thing\n', 'sub.ini')
    assert config.lookupProperty(sub, 'app.sep') == '/'
    with pytest.raises(config.ConfigValueError, match=r"sub\.ini:3: \[app\] bad: evaluating "
                                                      r"'bogus\.thing' raised ModuleNotFoundError"):
        config.lookupProperty(sub, 'app.bad')


def test_bad_expression_error_names_file_line_and_is_retried(writeIni):
    path = writeIni('bad.ini', '[app]\nx = undefined_name + 1\n')
    root = config.makeRoot([path])
    for _ in range(2):
        with pytest.raises(config.ConfigValueError) as info:
            config.lookupProperty(root, 'app.x')
        assert str(info.value).startswith(f"{path}:2: [app] x: evaluating 'undefined_name + 1' "
                                          f"raised NameError")


def test_file_errors_name_the_file(writeIni, tmp_path):
    with pytest.raises(config.ConfigError, match=r'nope\.ini: cannot read'):
        config.makeRoot([str(tmp_path / 'nope.ini')])
    bad = writeIni('bad.ini', '[app]\nx = 1\n[Not A Section]\n')
    with pytest.raises(config.UnknownSection, match=r'bad\.ini:3: unknown section'):
        config.makeRoot([bad])
    binary = tmp_path / 'bin.ini'
    binary.write_bytes(b'\xff\xfe[')
    with pytest.raises(config.ConfigError, match='not UTF-8'):
        config.makeRoot([str(binary)])


def test_property_not_found_is_both_config_and_lookup_error():
    root = config.makeRoot()
    with pytest.raises(config.PropertyNotFound) as info:
        config.lookupProperty(binding.Component(root, 'kid'), 'app.missing')
    assert isinstance(info.value, binding.ComponentLookupError)
    assert "property 'app.missing'" in str(info.value) and '/kid, /' in str(info.value)
    assert info.value.tried == ['/kid', '/']


def test_sibling_service_areas_are_isolated():
    root = config.makeRoot()
    left = config.ServiceArea(root, 'left')
    right = config.ServiceArea(root, 'right')
    assert left.registry.__bases__ == (root.registry,)
    assert root.registry.__bases__ == (getGlobalSiteManager(),)
    clock = Clock()
    left.registry.registerUtility(clock, IClock)
    leaf = binding.Component(left, 'leaf')
    assert binding.lookupComponent(leaf, IClock) is clock
    assert left.registry.getUtility(IClock) is clock
    assert binding.lookupComponent(right, IClock, None) is None
    assert binding.lookupComponent(root, IClock, None) is None
    root.registry.registerUtility(Clock(), IClock, 'named')
    assert right.registry.getUtility(IClock, 'named') is not None


def test_service_area_offers_and_rules_shadow_the_global_registry():
    getGlobalSiteManager().registerUtility(Clock(), IClock)
    root = config.makeRoot()
    local = Clock()
    root.registry.registerUtility(local, IClock)
    assert binding.lookupComponent(binding.Component(root), IClock) is local


def test_url_scheme_declared_in_ini_and_import_scheme():
    root = config.makeRoot()
    root.loadIniText('[peak.naming.schemes]\nmem = "tests.config.test_areas:memFactory"\n')
    kid = binding.Component(root, 'kid')
    assert binding.lookupComponent(kid, 'mem:thing') == ('mem', kid, 'mem:thing')
    assert binding.lookupComponent(kid, 'import:os:sep') == os.sep


def memFactory(parent, url):
    return 'mem', parent, url


def test_service_area_accepts_a_single_path_and_attrs(writeIni):
    path = writeIni('one.ini', '[app]\nx = 1\n')
    area = config.ServiceArea(None, 'area', iniFiles=path)
    assert config.lookupProperty(area, 'app.x') == 1
    with pytest.raises(TypeError):
        config.ServiceArea(None, nonsense=1)


def test_config_values_can_use_the_config_api():
    root = config.makeRoot()
    root.loadIniText('''[app]
base = 10
derived = lookupProperty(targetObj, 'app.base') * 2
imported = importString('os.path:join')
''')
    assert config.lookupProperty(root, 'app.derived') == 20
    assert config.lookupProperty(root, 'app.imported') is os.path.join
