"""Agents' remaining call-minute budgets, read once for all the calls that ask.

Every live call asks for its agent's budget every half minute (:mod:`.bridge`), and every
call of an agent gets the same answer. So in one process the calls of an agent share a
read: an ask while one is under way waits for it, and an answer is reused for
:data:`SHARE_SECONDS`, less the time since it was read. A hundred calls of one agent that
opened together made a hundred reads at once every 30 s; now they make one.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable
from functools import partial

__all__ = ["SHARE_SECONDS", "SharedBudgets", "shared_budgets"]

SHARE_SECONDS = 5.0

Read = Callable[[], Awaitable[float | None]]


class SharedBudgets:
    """Reads keyed by whatever decides the answer (the agent and the limits in force)."""

    def __init__(
        self,
        *,
        share_seconds: float = SHARE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._share = share_seconds
        self._clock = clock
        self._reads: dict[Hashable, tuple[float, asyncio.Task[float | None]]] = {}

    async def seconds_left(self, key: Hashable, read: Read) -> float | None:
        """``read()``'s answer for ``key``, from a read started at most ``share_seconds``
        ago if there is one, less the seconds since it started (None: no budget).

        Raises:
            Exception: whatever the shared read raised (a failed read is not kept).
        """
        now = self._clock()
        held = self._reads.get(key)
        if held is None or now - held[0] > self._share:
            held = (now, asyncio.ensure_future(read()))
            self._reads[key] = held
            held[1].add_done_callback(partial(self._forget_failure, key))
        read_at, task = held
        left = await asyncio.shield(task)  # a caller that gives up leaves it to the others
        return None if left is None else left - (self._clock() - read_at)

    def _forget_failure(self, key: Hashable, task: asyncio.Task[float | None]) -> None:
        if task.cancelled() or task.exception() is not None:
            held = self._reads.get(key)
            if held is not None and held[1] is task:
                del self._reads[key]


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SharedBudgets] = (
    weakref.WeakKeyDictionary()
)


def shared_budgets() -> SharedBudgets:
    """The running event loop's (its tasks cannot be awaited from another loop)."""
    loop = asyncio.get_running_loop()
    budgets = _per_loop.get(loop)
    if budgets is None:
        budgets = _per_loop[loop] = SharedBudgets()
    return budgets
