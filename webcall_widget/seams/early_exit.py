"""Run a function at the very start of the interpreter's shutdown.

Django's autoreloader (``manage.py runserver``) serves from a daemon thread and leaves the
process from the main thread: nothing tells the application. Functions given to ``atexit``
run too late, after ``concurrent.futures`` has stopped the worker threads that
``database_sync_to_async`` needs, so the calls could not record their end. CPython runs
the functions given to the private ``threading._register_atexit`` first, before it joins
those threads (it is how ``concurrent.futures`` itself stops them).

Where it is missing, the function goes to ``atexit``: the calls are still ended upstream,
though their end may not be recorded (``expire_webcalls`` and the leases clean up).
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable

from webcall_widget.seams.verified import Verified

VERIFIED = (
    Verified(
        "python",
        (3, 11),
        (3, 14),
        "webcall_widget/seams/early_exit.py",
        "tests/test_graceful_stop.py",
    ),
)


def register(function: Callable[[], None]) -> None:
    hook = getattr(threading, "_register_atexit", None)
    (hook if callable(hook) else atexit.register)(function)
