"""Every snippet marked runnable in README.md and docs/ runs: see tests/docs/snippets.py."""

import pytest

from tests.docs.runners import runNginx, runShell
from tests.docs.snippets import SnippetError, allSnippets, extract

SNIPPETS = allSnippets()


@pytest.mark.slow
@pytest.mark.parametrize('snippet', SNIPPETS, ids=[s.id for s in SNIPPETS])
def test_marked_snippet_runs(snippet, demo, procs):
    if snippet.lang == 'nginx':
        runNginx(snippet, demo, procs)
    else:
        runShell(snippet, demo, procs)
    # Whatever the snippet did (a SIGHUP restart, a status query), the demo
    # still serves, and stops cleanly at teardown.
    status, body = demo.get('/')
    assert status == 200 and 'preloaded by manager' in body, (status, body)


def test_readme_marks_its_demo_and_nginx_snippets():
    readme = [(s.lang, s.words) for s in SNIPPETS if s.path.name == 'README.md']
    assert ('sh', {'demo'}) in readme and ('nginx', set()) in readme


SAMPLE = """\
Text.

<!-- runnable: demo -->
```sh
curl http://127.0.0.1:8080/
```

```sh
not marked
```
<!--runnable-->
```nginx
location / { }
```
<!-- runnable: under=/app -->
```nginx
location /app/ { }
```
"""


def test_extract_finds_marked_blocks_only():
    found = extract('sample.md', SAMPLE)
    assert [(s.line, s.lang, s.words, s.text) for s in found] == [
        (4, 'sh', {'demo'}, "curl http://127.0.0.1:8080/\n"),
        (12, 'nginx', set(), "location / { }\n"),
        (16, 'nginx', {'under=/app'}, "location /app/ { }\n"),
    ]
    assert found[2].value('under') == '/app' and found[0].value('under') == ''


@pytest.mark.parametrize('text, message', [
    ("<!-- runnable -->\ntext\n", "sample.md:1: a runnable marker must be followed"),
    ("<!-- runnable -->\n```python\nx\n```\n", "sample.md:2: cannot run a 'python' block"),
    ("<!-- runnable: fast -->\n```sh\nx\n```\n", "sample.md:1: unknown word(s) ['fast']"),
    ("<!-- runnable: under= -->\n```nginx\nx\n```\n", "sample.md:1: unknown word(s) ['under=']"),
    ("<!-- runnable -->\n```sh\nx\n", "sample.md:2: the fenced block is never closed"),
])
def test_extract_names_file_and_line_of_a_bad_marker(text, message):
    with pytest.raises(SnippetError) as err:
        extract('sample.md', text)
    assert str(err.value).startswith(message)
