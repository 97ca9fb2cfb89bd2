"""One module per benchmark; each has ``TABLES`` (how to report it) and ``runRound(ctx)``."""
