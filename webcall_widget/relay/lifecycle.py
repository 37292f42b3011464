"""The live calls of this process, so that a server that stops can end them cleanly, and
so that a visitor's socket that comes back (a resume) finds the call it left.

A call is registered from its start to its end, whether or not a browser holds it: a call
waiting for its visitor to come back is ended by a server stop like any other.

ASGI servers stop in three ways, and each reaches the calls differently:

* Daphne (and ``runserver --noreload``) stops its Twisted reactor, which first cancels
  every application instance (the consumer then ends its call) and then drops every
  connection. Daphne 4.2's canceller can fail halfway (a ``KeyError`` for a connection
  without an application), so the relay also asks the reactor to wait, before it shuts
  down, for :meth:`Registry.stop_all` (:func:`webcall_widget.seams.twisted_reactor`).
* Uvicorn closes every socket itself with 1012 and sends the application a
  ``websocket.disconnect`` with that code; the consumer reads it as a stop.
* Django's autoreloader (``manage.py runserver``, ``make run``) runs the server in a daemon
  thread and leaves the process from the main thread on a change or on Ctrl+C: nothing is
  cancelled, the thread just stops existing. :func:`_end_calls_at_exit` runs first, at the
  start of the interpreter's shutdown, while the worker threads that the database needs
  still take work, and ends every live call on its own event loop
  (:func:`webcall_widget.seams.early_exit`).

In every case the call leaves VoiceHub's channels (each costs credits), is recorded as
``relay-stopped``, and the browser, where it can still be told, gets ``ended`` and a close
code that says "restarting".
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
import weakref
from typing import Protocol

from webcall_widget.seams import early_exit, twisted_reactor
from webcall_widget.voicehub.events import Mode

logger = logging.getLogger("webcall_widget.relay")

# How long the exit hook waits for the calls to end (each leaves upstream, writes twice).
EXIT_WAIT_SECONDS = 8.0


class LiveCall(Protocol):
    """A call this process holds, as the registry sees it (a bridge)."""

    @property
    def call_id(self) -> uuid.UUID: ...

    @property
    def mode(self) -> Mode: ...

    async def server_stopping(self) -> None: ...


class Registry:
    """The calls one process holds, each with the event loop it runs on.

    :data:`registry` is this process's; a test that plays two processes in one gives the
    second its own, empty one.
    """

    def __init__(self) -> None:
        self._live: weakref.WeakKeyDictionary[LiveCall, asyncio.AbstractEventLoop] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def register(self, call: LiveCall) -> None:
        """A call started on the running event loop."""
        with self._lock:
            self._live[call] = asyncio.get_running_loop()
        _hook_process_exit()

    def unregister(self, call: LiveCall) -> None:
        with self._lock:
            self._live.pop(call, None)

    def live_calls(self) -> list[LiveCall]:
        with self._lock:
            return list(self._live)

    def voice_calls(self) -> int:
        """Calls with audio held now (waiting ones included: they hold a line)."""
        with self._lock:
            return sum(1 for call in self._live if call.mode.has_audio)

    def find(self, call_id: uuid.UUID) -> LiveCall | None:
        """The live call with this id on the running event loop, if held here."""
        loop = asyncio.get_running_loop()
        with self._lock:
            for call, owner in self._live.items():
                if owner is loop and call.call_id == call_id:
                    return call
        return None

    def loops(self) -> set[asyncio.AbstractEventLoop]:
        with self._lock:
            return set(self._live.values())

    async def stop_all(self) -> int:
        """End every live call of the running event loop as a server stop; how many."""
        loop = asyncio.get_running_loop()
        with self._lock:
            calls = [call for call, owner in self._live.items() if owner is loop]
        await asyncio.gather(*(call.server_stopping() for call in calls), return_exceptions=True)
        return len(calls)


registry = Registry()

_hooked = False


def _hook_process_exit() -> None:
    global _hooked
    if not _hooked:
        _hooked = True
        early_exit.register(_end_calls_at_exit)
    twisted_reactor.before_shutdown(registry.stop_all)


def _end_calls_at_exit() -> None:
    for loop in registry.loops():
        if loop.is_closed() or not loop.is_running():
            continue
        try:
            if asyncio.get_running_loop() is loop:
                continue  # cannot wait for our own loop from inside it
        except RuntimeError:
            pass
        future = asyncio.run_coroutine_threadsafe(registry.stop_all(), loop)
        try:
            ended = future.result(timeout=EXIT_WAIT_SECONDS)
        except Exception:
            logger.exception("Could not end the live calls before the process exits.")
        else:
            logger.info("Ended %d live call(s): the process is stopping.", ended)
