"""resolveApp: adaptation to IWSGIApplication sees the component's service area, after assembly."""

import pytest
from zope.interface import implementer

from peak_lite import config
from peak_lite.running.gateways.appspec import resolveApp
from peak_lite.running.interfaces import IWSGIApplication, LoadError
from tests.running.sample_author import Greeting


@implementer(IWSGIApplication)
class GreetingApp:
    def __init__(self, greeting):
        self.greeting = greeting
        greeting.assembledBeforeAdaptation = greeting.isAssembled()

    def __call__(self, environ, start_response):
        start_response('200 OK', [])
        return [self.greeting.text.encode()]


def test_an_adapter_registered_in_the_service_area_is_used():
    root = config.makeRoot(environ={})
    area = config.ServiceArea(root, 'site')
    area.registry.registerAdapter(GreetingApp, (Greeting,), IWSGIApplication)
    app = resolveApp(area, 'tests.running.sample_author:Greeting')
    assert isinstance(app, GreetingApp)
    # Adaptation happens once the component is assembled.
    assert app.greeting.assembledBeforeAdaptation is True
    assert app({}, lambda status, headers: None) == [b'hello']


def test_the_adapter_is_not_seen_outside_its_service_area():
    root = config.makeRoot(environ={})
    config.ServiceArea(root, 'site').registry.registerAdapter(
        GreetingApp, (Greeting,), IWSGIApplication)
    with pytest.raises(LoadError, match="not a WSGI application"):
        resolveApp(config.ServiceArea(root, 'other'), 'tests.running.sample_author:Greeting')
