"""Find the snippets the docs mark as runnable.

A fenced block is runnable when the line right above its opening fence is
the HTML comment ``<!-- runnable -->`` (invisible once rendered), optionally
with words after a colon: ``<!-- runnable: demo -->``.  The fence's language
says how it runs (see ``tests/docs/runners.py``):

- ``sh``: each block runs in ``bash -euo pipefail`` in a fresh copy of the
  project, and must exit 0.  With ``demo``, ``make run`` serves the demo in
  that copy first, and must still serve once the block is done.
- ``nginx``: the block runs under a real nginx whose workers run as
  ``www-data`` and read the distribution's own ``fastcgi_params``, in front
  of the demo; ``/`` and ``/visits`` must each reach their route.  With
  ``under=/PREFIX`` the block mounts the app there: ``/PREFIX/`` and
  ``/PREFIX/visits`` are asked for instead.

Only what differs from machine to machine is rewritten, and nothing else:
``/path/to/peak_lite`` becomes the copy's directory, the demo's
``127.0.0.1:8080`` a free port, an example app socket
``unix:/run/myapp/NAME.sock`` the demo's socket (which answers FastCGI and
HTTP alike), and an nginx server's one ``listen`` line a free port on
127.0.0.1.  An nginx block without a ``server`` is run inside one.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]

MARKER = re.compile(r'^<!--\s*runnable(?::(?P<words>[^>]*?))?\s*-->\s*$')
FENCE = re.compile(r'^```(?P<lang>[\w-]*)\s*$')
LANGUAGES = {'sh': {'demo'}, 'nginx': {'under='}}     # 'NAME=' takes a value


class SnippetError(Exception):
    """A runnable marker the runner cannot honour: names file and line."""


@dataclass
class Snippet:
    path: Path
    line: int                   # of the opening fence, 1-based
    lang: str
    text: str
    words: set = field(default_factory=set)

    @property
    def id(self):
        return f"{self.path.name}:{self.line}"

    def value(self, name, default=''):
        """The value of a ``name=value`` word of the marker."""
        for word in self.words:
            if word.startswith(name + '='):
                return word[len(name) + 1:]
        return default


def _known(word, allowed):
    name, eq, value = word.partition('=')
    return (name + eq) in allowed and (not eq or value)


def extract(path, text=None):
    """Every marked snippet of the markdown file ``path``, in order."""
    path = Path(path)
    lines = (path.read_text(encoding='utf-8') if text is None else text).splitlines()
    found = []
    i = 0
    while i < len(lines):
        marker = MARKER.match(lines[i])
        i += 1
        if not marker:
            continue
        fence = FENCE.match(lines[i]) if i < len(lines) else None
        if fence is None:
            raise SnippetError(f"{path}:{i}: a runnable marker must be followed at once by"
                               f" a fenced block")
        lang, words = fence.group('lang'), set((marker.group('words') or '').split())
        if lang not in LANGUAGES:
            raise SnippetError(f"{path}:{i + 1}: cannot run a {lang or 'plain'!r} block;"
                               f" runnable blocks are {', '.join(sorted(LANGUAGES))}")
        unknown = sorted(w for w in words if not _known(w, LANGUAGES[lang]))
        if unknown:
            raise SnippetError(f"{path}:{i}: unknown word(s) {unknown} for a {lang} block;"
                               f" known: {sorted(LANGUAGES[lang])}")
        start = i + 1
        end = start
        while end < len(lines) and lines[end].strip() != '```':
            end += 1
        if end == len(lines):
            raise SnippetError(f"{path}:{start}: the fenced block is never closed")
        found.append(Snippet(path, start, lang, '\n'.join(lines[start:end]) + '\n', words))
        i = end + 1
    return found


def allSnippets():
    return [s for path in DOCS for s in extract(path)]
