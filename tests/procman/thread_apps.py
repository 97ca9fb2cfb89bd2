"""A module that leaves a thread running when it is imported: forking with it is unsafe."""

import threading

_stop = threading.Event()
refresher = threading.Thread(target=_stop.wait, name='cache-refresher', daemon=True)
refresher.start()
