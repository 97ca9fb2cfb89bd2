"""peak_lite's benchmark suite: peak procman against gunicorn and uWSGI (``python -m bench.run``)."""
