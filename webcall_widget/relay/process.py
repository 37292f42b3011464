"""This relay process, as the other processes and a load balancer see it.

Every process that relays calls has an id (host, pid and a random part) and renews a
**lease** in the shared cache (:mod:`webcall_widget.leases`): one write every
:data:`RENEW_SECONDS`, whatever the number of calls. Each live call records its owner
(``Call.owner``). A call whose owner's lease has lapsed is nobody's: it stops counting
against its agent's caps at once (:func:`webcall_widget.limits.active_calls`), and the
**sweeper** that runs in every relay process (no cron needed) takes it over where
VoiceHub lets a second socket join a call (``UPSTREAM.REJOIN``) and otherwise ends it as
``relay-lost`` (:mod:`.adoption`).

When the cache loses every lease at once (Redis restarted or flushed: a process finds its
own lease gone when it renews it), the other processes have not written theirs again yet
and look gone, though they are not: the process takes no call from another one for a lease
period (:attr:`RelayProcess.quiet_until`), and has its calls join their channel-layer
groups again (the restart emptied those too).

A process that is asked to stop (SIGTERM or SIGINT, see :mod:`.stopping`) **drains**: its
lease says so, its readiness answers no, it takes no new call, and it hands its calls to
the other processes before it exits.

The housekeeping task (lease, then sweep) starts with the first socket or health check
that reaches the process (:meth:`RelayProcess.start`), on the event loop that serves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from asgiref.sync import sync_to_async

from webcall_widget import leases
from webcall_widget.relay.lifecycle import Registry, registry

logger = logging.getLogger("webcall_widget.relay")

RENEW_SECONDS = 5.0

Sweep = Callable[["RelayProcess"], Awaitable[Any]]


@runtime_checkable
class LayerMember(Protocol):
    """A call with a channel-layer group to join again after Redis lost it."""

    async def join_layer_again(self) -> None: ...


def _new_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(3)}"


class RelayProcess:
    """``calls`` are the calls it holds; ``sweep`` is what the housekeeping does after each
    renewal (:func:`webcall_widget.relay.adoption.sweep`, given by the consumer)."""

    def __init__(
        self,
        *,
        calls: Registry | None = None,
        process_id: str | None = None,
        renew_seconds: float = RENEW_SECONDS,
        lease_seconds: float = leases.LEASE_SECONDS,
    ) -> None:
        self.id = process_id or _new_id()
        self.calls = calls if calls is not None else Registry()
        self.renew_seconds = renew_seconds
        self.lease_seconds = lease_seconds
        self.started_at = time.time()
        self.draining = False
        # No sweep before this (the loop's time): the cache lost the leases lately.
        self.quiet_until = 0.0
        self._renewed = False
        self._task: asyncio.Task[None] | None = None
        self._sweep: Sweep | None = None

    def sweep_with(self, sweep: Sweep) -> None:
        """What the housekeeping does after each renewal of the lease."""
        self._sweep = sweep

    def ensure_running(self) -> None:
        """Start the housekeeping on the running event loop, unless it runs already (its
        first act is to write the lease)."""
        if not self._running():
            self._task = asyncio.get_running_loop().create_task(
                self._housekeep(first_after=0.0), name=f"webcall-process-{self.id}"
            )

    async def start(self) -> None:
        """As :meth:`ensure_running`, with the lease written when this returns (the first
        socket of a process pays one cache write before it claims a call)."""
        if self._running():
            return
        await self.renew()
        if not self._running():
            self._task = asyncio.get_running_loop().create_task(
                self._housekeep(first_after=self.renew_seconds), name=f"webcall-process-{self.id}"
            )

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop that serves this process (its housekeeping's), once one does."""
        return self._task.get_loop() if self._task is not None else None

    def _running(self) -> bool:
        task = self._task
        return task is not None and not task.done() and not task.get_loop().is_closed()

    async def stop_housekeeping(self) -> None:
        task, self._task = self._task, None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _housekeep(self, *, first_after: float = 0.0) -> None:
        await asyncio.sleep(first_after)
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self.renew()
                if self._sweep is not None and loop.time() >= self.quiet_until:
                    await self._sweep(self)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Relay process %s: housekeeping failed; trying again.", self.id)
            await asyncio.sleep(self.renew_seconds)

    async def renew(self) -> None:
        """Tell the other processes this one is alive (and whether it drains)."""
        held = await sync_to_async(leases.renew, thread_sensitive=False)(
            self.id, draining=self.draining, at=time.time(), seconds=self.lease_seconds
        )
        if not held and self._renewed:
            await self._leases_lost()
        self._renewed = True

    async def _leases_lost(self) -> None:
        loop = asyncio.get_running_loop()
        self.quiet_until = loop.time() + self.lease_seconds
        logger.warning(
            "Relay process %s: the cache lost the relay processes' leases (Redis restarted "
            "or was flushed); no call is taken from another process for %g s, while they "
            "write theirs again.",
            self.id,
            self.lease_seconds,
        )
        calls = [c for c in self.calls.live_calls() if isinstance(c, LayerMember)]
        await asyncio.gather(*(c.join_layer_again() for c in calls), return_exceptions=True)

    def leases_doubtful(self) -> bool:
        """Whether a missing lease may mean nothing yet: the cache lost every lease less
        than a lease period ago, and the other processes may not have written theirs
        again."""
        return asyncio.get_running_loop().time() < self.quiet_until

    async def release(self) -> None:
        """This process is gone: its lease lapses now, not when it would expire."""
        with contextlib.suppress(Exception):
            await sync_to_async(leases.drop, thread_sensitive=False)(self.id)

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
