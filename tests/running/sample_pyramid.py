"""A Pyramid application mounted as a component's child (the guide in docs/components.md).

The ``Site`` component owns the database connection and a cache preloaded at
assembly, in the procman manager, before the fork; the Pyramid app is built
there too.  Each request runs in the transaction WebApp begins, so what a
Pyramid view writes through ``site.db`` is committed before the response
leaves, and aborted when the view fails.
"""

import os

from pyramid.config import Configurator
from pyramid.response import Response

from peak_lite import binding
from peak_lite.running.gateways.webapp import COMPONENT_KEY, WebApp, route
from peak_lite.storage import SQLiteConnection


def listWords(request):
    site = request.environ[COMPONENT_KEY]
    words = [row[0] for row in site.db.query("SELECT word FROM words ORDER BY word")]
    return Response(f"served={os.getpid()} preloadedBy={site.preloadedBy} "
                    f"preloaded={','.join(site.preloaded)} words={','.join(words)}\n")


def addWord(request):
    site = request.environ[COMPONENT_KEY]
    site.db.execute("INSERT INTO words VALUES (?)", (request.matchdict['word'],))
    if request.params.get('fail'):
        raise RuntimeError("the view failed after writing")
    return Response("added\n")


def makePyramid(site):
    with Configurator() as config:
        config.add_route('words', '/words')
        config.add_route('add', '/add/{word}')
        config.add_view(listWords, route_name='words')
        config.add_view(addWord, route_name='add', request_method='POST')
        return config.make_wsgi_app()


class Site(WebApp):
    db = binding.Make(lambda: SQLiteConnection(os.environ['SITE_DB']))
    preloaded = binding.Make(
        lambda self: [row[0] for row in self.db.query("SELECT word FROM words")],
        uponAssembly=True)
    preloadedBy = binding.Make(os.getpid, uponAssembly=True)
    pyramid = binding.Make(makePyramid, uponAssembly=True)
    mounts = {'/': 'pyramid'}

    @route('/health')
    def health(self, request):
        return "ok"
