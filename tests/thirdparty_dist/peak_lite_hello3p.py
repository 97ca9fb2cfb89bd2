"""A command contributed by another distribution."""

from peak_lite.running.commands import AbstractCommand


class Hello(AbstractCommand):
    """Say hello from a third-party distribution"""

    usage = "Usage: peak hello3p [NAME...]"

    def _run(self):
        self.stdout.write(f"hello3p {' '.join(self.args)}".strip() + "\n")
        return 0
