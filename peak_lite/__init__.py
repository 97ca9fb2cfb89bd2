"""peak_lite: a small PEAK-style component framework and pre-forking process manager."""
