"""checkTree and checkIniValues: what --check resolves before the app serves."""

import pytest

from peak_lite import binding, config
from peak_lite.config import ConfigValueError, PropertyNotFound


class Greeter(binding.Component):
    greeting = binding.Obtain(binding.PropertyName('acc.greting'))
    optional = binding.Obtain(binding.PropertyName('acc.optional'), default=None)


class Account(binding.Component):
    greeter = binding.Make(Greeter, uponAssembly=True)


def ini(tmp_path, text, name='child.ini'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_missing_property_is_one_line_with_did_you_mean_and_the_files(tmp_path):
    child = ini(tmp_path, '[acc]\ngreeting = "hello"\n')
    root = config.makeRoot([child], environ={})
    account = Account(root, 'account')
    with pytest.raises(PropertyNotFound) as info:
        config.checkTree(account)
    message = str(info.value)
    assert message.startswith("property 'acc.greting', obtained by /account/greeter.greeting"
                              " (Greeter.greeting), is not defined; did you mean 'acc.greeting'?")
    assert message.endswith(f"peak_lite.ini, {child})") and '\n' not in message
    assert 'greeting' not in account.greeter.__dict__     # the binding stays uncomputed


def test_a_defined_property_passes_and_defaults_are_not_required(tmp_path):
    root = config.makeRoot([ini(tmp_path, '[acc]\ngreting = "hi"\n')], environ={})
    config.checkTree(Account(root, 'account'))


def test_the_tree_is_found_through_plain_objects_and_bound_methods(tmp_path):
    root = config.makeRoot([ini(tmp_path, '[acc]\n')], environ={})

    class Wrapper:
        def __init__(self, app):
            self.app = app
    with pytest.raises(PropertyNotFound):
        config.checkTree(Wrapper(Account(root, 'account').greeter.uponAssembly))


def test_every_value_of_the_file_is_evaluated(tmp_path):
    child = ini(tmp_path, '[acc]\ngreting = "hi"\nfarewell = bye\n')
    root = config.makeRoot([child], environ={})
    assert root.loadedFiles() == [config.BUILTIN_INI, child]
    with pytest.raises(ConfigValueError) as info:
        config.checkIniValues(root, child)
    assert str(info.value) == (
        f"{child}:3: [acc] farewell: evaluating 'bye' raised NameError: name 'bye' is not"
        f" defined; did you mean 'bye' as a string? values are Python expressions, so quote"
        f" text")
