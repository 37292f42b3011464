"""Does each dependency of this process answer now: the database, the cache, the channel
layer?

Readiness is polled every second or so by every load balancer and probe in front of the
process, so a check must cost little and never stall the process:

- **one round trip at a time, answers kept about a second.** :class:`Readiness` runs the
  checks together; requests that arrive meanwhile wait for the same answer, and an
  answer is reused for :data:`FRESH_SECONDS`. However many probes poll, each dependency
  sees at most about one round trip a second from each process.
- **bounded.** Each check has a timeout; one that has not answered by then has failed.
- **off the event loop.** Django's database and cache APIs block, so those checks run in
  a daemon thread of their own, one per dependency (:class:`Worker`): a dependency that
  hangs holds that thread only, never the event loop, nor asgiref's shared thread that
  the site's synchronous code runs in, nor the process's exit. While a call hangs, later
  checks wait for that same call instead of piling up threads or queued calls.
- **nothing to learn from the answer.** A failure says only the exception's type or
  that the time ran out, never a host, a user or a driver's message; the full error goes
  to the log (``webcall_widget.health``), at most once a minute per dependency.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import secrets
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from channels.layers import get_channel_layer
from django.core.cache import caches
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from webcall_widget.spacing import Spacing

logger = logging.getLogger("webcall_widget.health")

FRESH_SECONDS = 1.0
LOG_EVERY_SECONDS = 60.0

Probe = Callable[[], Awaitable[str | None]]
"""A check: returns a note (or None) when the dependency answered, raises when it did not."""


@dataclass(frozen=True, slots=True)
class Check:
    """One dependency's answer."""

    ok: bool
    seconds: float | None = None  # how long it took to answer
    error: str = ""  # why it failed, in words that name no host and no user
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"ok": self.ok}
        if self.seconds is not None:
            found["ms"] = round(self.seconds * 1000, 2)
        if self.error:
            found["error"] = self.error
        if self.note:
            found["note"] = self.note
        return found


class Worker:
    """Runs a blocking check in a daemon thread of its own, one call at a time.

    Awaiting the worker starts a call unless one is under way, and waits for that call's
    answer. Cancelling the wait (a timeout) leaves the call running: the next wait while
    it still runs waits for it too, so a hung dependency costs one thread, not one per
    check.
    """

    def __init__(self, name: str, function: Callable[[], str | None]) -> None:
        self.name = name
        self._function = function
        self._jobs: queue.SimpleQueue[concurrent.futures.Future[str | None]] = queue.SimpleQueue()
        self._current: concurrent.futures.Future[str | None] | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    async def __call__(self) -> str | None:
        with self._lock:
            job = self._current
            if job is None or job.done():
                job = self._current = concurrent.futures.Future()
                self._jobs.put(job)
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._serve, name=f"webcall-health-{self.name}", daemon=True
                    )
                    self._thread.start()
        answer = asyncio.wrap_future(job)
        answer.add_done_callback(_retrieve)  # also when nobody waits for it any more
        return await asyncio.shield(answer)

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if not job.set_running_or_notify_cancel():
                continue
            try:
                note = self._function()
            except BaseException as exc:  # handed to whoever waits for the answer
                job.set_exception(exc)
            else:
                job.set_result(note)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def database_check(
    connection: Callable[[], BaseDatabaseWrapper] = lambda: connections[DEFAULT_DB_ALIAS],
) -> Callable[[], str | None]:
    """``SELECT 1`` on the connection this thread has (``connection``: the site's default
    database), opened and closed as a request would (``CONN_MAX_AGE``)."""

    def check() -> None:
        database = connection()
        database.close_if_unusable_or_obsolete()
        try:
            with database.cursor() as cursor:
                cursor.execute("SELECT 1" + database.features.bare_select_suffix)
                cursor.fetchone()
        finally:
            database.close_if_unusable_or_obsolete()
        return None

    return check


class CacheDidNotKeep(Exception):
    """The cache answered, but did not keep what was written to it."""


def cache_check(key: str, alias: str = "default") -> Callable[[], str | None]:
    """Write a value under ``key`` (one per process) and read it back."""

    def check() -> None:
        cache = caches[alias]
        value = secrets.token_hex(8)
        cache.set(key, value, timeout=30)
        if cache.get(key) != value:
            raise CacheDidNotKeep(f"CACHES[{alias!r}] did not keep a value.")
        return None

    return check


class ChannelLayerCheck:
    """Send a message to a channel of this process and receive it: the path a call's
    frames take between processes."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self._channels: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()

    async def __call__(self) -> str | None:
        layer = get_channel_layer(self.alias)
        if layer is None:
            return "none configured"
        channel = self._channels.get(layer)
        if channel is None:
            # The calls' prefix: channels_redis reads all of a process's channels under one
            # lock, and a call's mailbox holds it in its blocking read of *its* prefix's
            # list; a channel of another prefix waits for that read to end (5 s).
            channel = self._channels[layer] = await layer.new_channel()
        await layer.send(channel, {"type": "webcall.health"})
        # A message left by a check that timed out may come first: either proves the path.
        await layer.receive(channel)
        return None


def default_probes(key: str) -> dict[str, Probe]:
    """The site's default database, cache and channel layer; ``key``: this process's key
    in the cache."""
    return {
        "database": Worker("database", database_check()),
        "cache": Worker("cache", cache_check(key)),
        "channel_layer": ChannelLayerCheck(),
    }


class Readiness:
    """The answers of ``probes``, kept ``fresh_seconds`` by ``clock``, one run at a time."""

    def __init__(
        self,
        probes: Mapping[str, Probe],
        *,
        fresh_seconds: float = FRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.probes = dict(probes)
        self.fresh_seconds = fresh_seconds
        self._clock = clock
        self._answer: dict[str, Check] | None = None
        self._answered_at = 0.0
        self._task: asyncio.Task[dict[str, Check]] | None = None
        self._notices = Spacing(LOG_EVERY_SECONDS, clock)

    async def check(self, within: float) -> dict[str, Check]:
        """Each dependency's answer, each given ``within`` seconds (or a recent one)."""
        if self._answer is not None and self._clock() - self._answered_at < self.fresh_seconds:
            return self._answer
        loop = asyncio.get_running_loop()
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            task = self._task = loop.create_task(self._check_all(within))
        # A request that goes away does not cancel the check the others wait for.
        return await asyncio.shield(task)

    def forget(self) -> None:
        """The next check asks again."""
        self._answer = None

    async def _check_all(self, within: float) -> dict[str, Check]:
        names = list(self.probes)
        checks = await asyncio.gather(*(self._check(name, within) for name in names))
        answer = dict(zip(names, checks, strict=True))
        self._answer, self._answered_at = answer, self._clock()
        return answer

    async def _check(self, name: str, within: float) -> Check:
        started = time.perf_counter()
        deadline = asyncio.timeout(within)
        try:
            async with deadline:
                note = await self.probes[name]()
        except Exception as exc:
            if deadline.expired():
                error = f"no answer within {within:g} s"
                self._log(name, error)
            else:  # a driver's own timeout too: its type is all that is shown
                error = type(exc).__name__
                self._log(name, f"{error}: {exc}")
            return Check(False, error=error)
        return Check(True, seconds=time.perf_counter() - started, note=note or "")

    def _log(self, name: str, error: str) -> None:
        if self._notices.due(name):
            logger.warning("Readiness: the %s check failed (%s).", name, error)
