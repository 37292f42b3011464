"""This relay process, as the other processes and a load balancer see it.

Every process that relays calls has an id (host, pid and a random part) and renews a
**lease** in the shared cache: one write every :data:`RENEW_SECONDS`, valid for
:data:`LEASE_SECONDS`, whatever the number of calls. Each live call records its owner
(``Call.owner``). A call whose owner's lease has lapsed is nobody's: it stops counting
against its agent's caps at once (:func:`webcall_widget.limits.active_calls`), and the
**sweeper** that runs in every relay process (no cron needed) takes it over where
VoiceHub lets a second socket join a call (``UPSTREAM.REJOIN``) and otherwise ends it as
``relay-lost`` (:mod:`.adoption`).

A process that is asked to stop (SIGTERM or SIGINT, see :mod:`.stopping`) **drains**: its
lease says so, its readiness answers no, it takes no new call, and it hands its calls to
the other processes before it exits.

The housekeeping task (lease, then sweep) starts with the first socket or health check
that reaches the process, on the event loop that serves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from asgiref.sync import sync_to_async
from django.core.cache import cache

from webcall_widget.relay.lifecycle import Registry, registry

logger = logging.getLogger("webcall_widget.relay")

# A process that stops renewing its lease is taken for gone this long after its last
# renewal: the longest a dead process's calls hold their agent's lines.
LEASE_SECONDS = 15.0
RENEW_SECONDS = 5.0
LEASE_PREFIX = "webcall_widget:relay-lease:"

Sweep = Callable[["RelayProcess"], Awaitable[Any]]


def lease_key(process_id: str) -> str:
    return LEASE_PREFIX + process_id


def _new_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(3)}"


def leases(owners: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The live leases among ``owners`` (synchronous: the cache's own I/O); a process
    missing from the answer is gone."""
    keys = {lease_key(owner): owner for owner in owners if owner}
    if not keys:
        return {}
    found = cache.get_many(list(keys))
    return {keys[key]: value for key, value in found.items() if isinstance(value, dict)}


aleases = sync_to_async(leases, thread_sensitive=False)


class RelayProcess:
    """``calls`` are the calls it holds; ``sweep`` is what the housekeeping does after each
    renewal (:func:`webcall_widget.relay.adoption.sweep`, given by the consumer)."""

    def __init__(
        self,
        *,
        calls: Registry | None = None,
        process_id: str | None = None,
        renew_seconds: float = RENEW_SECONDS,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.id = process_id or _new_id()
        self.calls = calls if calls is not None else Registry()
        self.renew_seconds = renew_seconds
        self.lease_seconds = lease_seconds
        self.started_at = time.time()
        self.draining = False
        self._task: asyncio.Task[None] | None = None
        self._sweep: Sweep | None = None

    def ensure_running(self, sweep: Sweep | None = None) -> None:
        """Start the housekeeping on the running event loop, unless it runs already."""
        if sweep is not None:
            self._sweep = sweep
        task = self._task
        if task is not None and not task.done() and not task.get_loop().is_closed():
            return
        self._task = asyncio.get_running_loop().create_task(
            self._housekeep(), name=f"webcall-process-{self.id}"
        )

    async def stop_housekeeping(self) -> None:
        task, self._task = self._task, None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _housekeep(self) -> None:
        while True:
            try:
                await self.renew()
                if self._sweep is not None:
                    await self._sweep(self)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Relay process %s: housekeeping failed; trying again.", self.id)
            await asyncio.sleep(self.renew_seconds)

    async def renew(self) -> None:
        """Tell the other processes this one is alive (and whether it drains)."""
        lease = {"at": time.time(), "draining": self.draining}
        await sync_to_async(cache.set, thread_sensitive=False)(
            lease_key(self.id), lease, self.lease_seconds
        )

    async def release(self) -> None:
        """This process is gone: its lease lapses now, not in :data:`LEASE_SECONDS`."""
        with contextlib.suppress(Exception):
            await sync_to_async(cache.delete, thread_sensitive=False)(lease_key(self.id))

    def describe(self) -> dict[str, Any]:
        """What a health check may show: no call ids, no keys."""
        return {
            "process": self.id,
            "draining": self.draining,
            "calls": len(self.calls.live_calls()),
            "voice_calls": self.calls.voice_calls(),
            "up_seconds": round(time.time() - self.started_at, 1),
        }


current = RelayProcess(calls=registry)
"""This process (tests that play a second process make one of their own)."""
