"""Under Daphne: have Twisted's reactor wait for a coroutine before it shuts down.

Daphne stops by stopping its reactor, which first cancels every application instance and
then drops the connections. Daphne 4.2's canceller can fail halfway (a ``KeyError`` for a
connection without an application), and a call whose visitor is away has no application
instance to cancel at all; so the relay asks the reactor, through Twisted's public
``addSystemEventTrigger``, to wait for its calls to end. What is not public is reaching
Daphne's reactor: it is the one installed in ``sys.modules`` and running.

Outside Daphne (Uvicorn, runserver without Daphne) there is no reactor and this does
nothing.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from webcall_widget.seams.verified import Verified

VERIFIED = (
    Verified(
        "daphne",
        (4, 2),
        (4, 3),
        "webcall_widget/seams/twisted_reactor.py",
        "tests/test_graceful_stop.py",
    ),
)

_hooked = False


def before_shutdown(stop: Callable[[], Coroutine[Any, Any, object]]) -> None:
    """Once per process, and only under a running reactor: ``stop()`` before shutdown."""
    global _hooked
    reactor: Any = sys.modules.get("twisted.internet.reactor")
    if _hooked or reactor is None or not getattr(reactor, "running", False):
        return
    _hooked = True
    from twisted.internet import defer

    def wait() -> Any:
        return defer.Deferred.fromFuture(asyncio.ensure_future(stop()))

    reactor.addSystemEventTrigger("before", "shutdown", wait)
