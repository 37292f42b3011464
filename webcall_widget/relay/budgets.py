"""Agents' remaining call-minute budgets, read once for all the calls that ask.

Every live call asks for its agent's budget every half minute (:mod:`.bridge`), and every
call of an agent gets the same answer. So in one process the calls of an agent share a
read: an ask while one is under way waits for it, and an answer is reused for
:data:`SHARE_SECONDS` after it came, less the time since. A hundred calls of one agent that
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
    """Reads keyed by whatever decides the answer (the agent, the limits in force, the day)."""

    def __init__(
        self,
        *,
        share_seconds: float = SHARE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._share = share_seconds
        self._clock = clock
        self._answers: dict[Hashable, tuple[float, float | None]] = {}  # when it came, what
        self._reads: dict[Hashable, asyncio.Task[tuple[float, float | None]]] = {}  # under way

    async def seconds_left(self, key: Hashable, read: Read) -> float | None:
        """``read()``'s answer for ``key``: one that came at most ``share_seconds`` ago,
        or the one under way, or a new one; less the seconds since it came (None: no
        budget).

        Raises:
            Exception: whatever the shared read raised (a failed read is not kept).
        """
        answer = self._answers.get(key)
        if answer is None or self._clock() - answer[0] > self._share:
            task = self._reads.get(key)
            if task is None:
                task = self._reads[key] = asyncio.ensure_future(self._stamped(read))
                task.add_done_callback(partial(self._came, key))
            # A caller that gives up leaves it to the others. The answer is the task's own:
            # one that asks once the read is done, before _came has run, gets it too.
            answer = await asyncio.shield(task)
        came_at, left = answer
        return None if left is None else left - (self._clock() - came_at)

    async def _stamped(self, read: Read) -> tuple[float, float | None]:
        left = await read()
        return self._clock(), left

    def _came(self, key: Hashable, task: asyncio.Task[tuple[float, float | None]]) -> None:
        del self._reads[key]
        if not task.cancelled() and task.exception() is None:
            self._answers[key] = task.result()


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
