"""An app whose author misspelled a binding keyword (line 7)."""

from peak_lite import binding


class App(binding.Component):
    cache = binding.Make(dict, uponAsembly=True)
