"""Imported by the manager before forking: 200 MB of real (written) pages for ops_apps.BIG."""

from tests.procman import ops_apps

ops_apps.BIG = bytes(range(256)) * (200 * 4096)
