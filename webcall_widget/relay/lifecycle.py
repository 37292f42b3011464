"""The live calls of this process, so that a server that stops can end them cleanly, and
so that a visitor's socket that comes back (a resume) finds the call it left.

A call is registered from its start to its end, whether or not a browser holds it: a call
waiting for its visitor to come back is ended by a server stop like any other.

ASGI servers stop in three ways, and each reaches the calls differently:

* Daphne (and ``runserver --noreload``) stops its Twisted reactor, which first cancels
  every application instance (the consumer then ends its call) and then drops every
  connection. Daphne 4.2's canceller can fail halfway (a ``KeyError`` for a connection
  without an application), so the relay also asks the reactor to wait, before it shuts
  down, for :func:`stop_all`.
* Uvicorn closes every socket itself with 1012 and sends the application a
  ``websocket.disconnect`` with that code; the consumer reads it as a stop.
* Django's autoreloader (``manage.py runserver``, ``make run``) runs the server in a daemon
  thread and leaves the process from the main thread on a change or on Ctrl+C: nothing is
  cancelled, the thread just stops existing. :func:`_end_calls_at_exit` runs first, at the
  start of the interpreter's shutdown, while the worker threads that the database needs
  still take work, and ends every live call on its own event loop.

In every case the call leaves VoiceHub's channels (each costs credits), is recorded as
``relay-stopped``, and the browser, where it can still be told, gets ``ended`` and a close
code that says "restarting".
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import threading
import uuid
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from webcall_widget.relay.bridge import Bridge

logger = logging.getLogger("webcall_widget.relay")

# How long the exit hook waits for the calls to end (each leaves upstream, writes twice).
EXIT_WAIT_SECONDS = 8.0

_live: weakref.WeakKeyDictionary[Bridge, asyncio.AbstractEventLoop] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_exit_hooked = False
_reactor_hooked = False


def register(bridge: Bridge) -> None:
    """A call went live on the running event loop."""
    global _exit_hooked
    with _lock:
        _live[bridge] = asyncio.get_running_loop()
        if not _exit_hooked:
            _exit_hooked = True
            # Before concurrent.futures stops its threads (which database_sync_to_async
            # needs); plain atexit hooks run after that.
            register_early = getattr(threading, "_register_atexit", atexit.register)
            register_early(_end_calls_at_exit)
    _hook_twisted_reactor()


def _hook_twisted_reactor() -> None:
    """Under Daphne: have its reactor end our calls before it drops the connections."""
    global _reactor_hooked
    reactor: Any = sys.modules.get("twisted.internet.reactor")
    if _reactor_hooked or reactor is None or not getattr(reactor, "running", False):
        return
    _reactor_hooked = True
    from twisted.internet import defer

    def before_shutdown() -> Any:
        return defer.Deferred.fromFuture(asyncio.ensure_future(stop_all()))

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)


def unregister(bridge: Bridge) -> None:
    with _lock:
        _live.pop(bridge, None)


def live_calls() -> list[Bridge]:
    with _lock:
        return list(_live)


def voice_calls() -> int:
    """Calls with audio this process relays now (waiting ones included: they hold it)."""
    with _lock:
        return sum(1 for bridge in _live if bridge.mode.has_audio)


def find(call_id: uuid.UUID) -> Bridge | None:
    """The live call with this id on the running event loop, if this process holds it."""
    loop = asyncio.get_running_loop()
    with _lock:
        for bridge, owner in _live.items():
            if owner is loop and bridge.call.call_id == call_id:
                return bridge
    return None


async def stop_all() -> int:
    """End every live call of the running event loop as a server stop; how many."""
    loop = asyncio.get_running_loop()
    with _lock:
        bridges = [bridge for bridge, owner in _live.items() if owner is loop]
    await asyncio.gather(*(bridge.server_stopping() for bridge in bridges), return_exceptions=True)
    return len(bridges)


def _end_calls_at_exit() -> None:
    with _lock:
        loops = set(_live.values())
    for loop in loops:
        if loop.is_closed() or not loop.is_running():
            continue
        try:
            if asyncio.get_running_loop() is loop:
                continue  # cannot wait for our own loop from inside it
        except RuntimeError:
            pass
        future = asyncio.run_coroutine_threadsafe(stop_all(), loop)
        try:
            ended = future.result(timeout=EXIT_WAIT_SECONDS)
        except Exception:
            logger.exception("Could not end the live calls before the process exits.")
        else:
            logger.info("Ended %d live call(s): the process is stopping.", ended)
