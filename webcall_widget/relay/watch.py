"""The one timer of a live call: its deadlines, its budget, its visitor's resume token.

A call has deadlines (:mod:`.deadlines`: the longest call, the idle timeout, the agent's
daily budget, the grace period while the visitor is away), re-reads its agent's remaining
budget every :data:`BUDGET_CHECK_SECONDS`, and gives the browser holding it a fresh resume
token every :data:`~webcall_widget.relay.tokens.RESUME_REFRESH_SECONDS`. :class:`Watch`
keeps all of that on one timer handle, set for the earliest of them, instead of a timeout
around every upstream read. It reads time from its event loop only, so tests run it on a
loop whose clock they control.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from webcall_widget.relay.activity import Activity
from webcall_widget.relay.deadlines import Deadlines
from webcall_widget.relay.tokens import RESUME_REFRESH_SECONDS

logger = logging.getLogger("webcall_widget.relay")

# How often a live call re-reads its agent's remaining call-minute budget.
BUDGET_CHECK_SECONDS = 30.0


class Watch:
    """``read_budget`` answers the seconds the agent has left today (None: no budget);
    ``renew_token`` gives the browser holding the call a fresh resume token. Neither may
    take the call down: a failure is logged and the call goes on."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        label: str,
        *,
        idle_seconds: float,
        read_budget: Callable[[], Awaitable[float | None]],
        renew_token: Callable[[], Awaitable[None]],
    ) -> None:
        self._loop = loop
        self._label = label
        self.activity = Activity(idle_seconds, loop.time)
        self.deadlines = Deadlines(ends_at=math.inf, idle_seconds=idle_seconds)
        self._read_budget = read_budget
        self._renew_token = renew_token
        self.expired: asyncio.Future[str] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._next_budget_check = math.inf
        self._budget_task: asyncio.Task[None] | None = None
        self._next_token = math.inf
        self._token_task: asyncio.Task[None] | None = None

    def start(self, max_call_seconds: float, *, renew_token: bool) -> asyncio.Future[str]:
        """The call is live: a future that is set to the reason, when a deadline comes."""
        now = self._loop.time()
        self.activity.message()
        self.deadlines.ends_at = now + max_call_seconds
        self._next_budget_check = now  # at once: the budget may be spent already
        if renew_token and self._next_token == math.inf:
            self._next_token = now + RESUME_REFRESH_SECONDS
        self.expired = self._loop.create_future()
        self._check()
        return self.expired

    async def until_expired_or(self, work: asyncio.Future[Any]) -> str | None:
        """Wait, once started, for ``work`` to be done or a deadline to come: the
        deadline's reason, None when ``work`` was done first. What ``asyncio.wait`` does,
        without the frame, set and waiter it would keep for the call's life."""
        expired = self.expired
        assert expired is not None
        first = self._loop.create_future()

        def done(_: asyncio.Future[Any]) -> None:
            if not first.done():
                first.set_result(None)

        work.add_done_callback(done)
        expired.add_done_callback(done)
        await first
        return expired.result() if expired.done() else None

    def renew_token_from_now(self) -> None:
        self._next_token = self._loop.time() + RESUME_REFRESH_SECONDS
        self._rearm()

    def visitor_away(self, grace_seconds: float) -> None:
        """No socket holds the call: no token to renew, and the grace period runs."""
        self._next_token = math.inf
        self.deadlines.resume_until = self._loop.time() + grace_seconds
        self._rearm()

    def visitor_back(self) -> None:
        self.deadlines.resume_until = math.inf

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in (self._budget_task, self._token_task):
            if task is not None:
                task.cancel()
        self._budget_task = self._token_task = None

    def _check(self) -> None:
        """The timer's callback: end the call, or wait for the next deadline."""
        self._timer = None
        expired = self.expired
        if expired is None or expired.done():
            return
        now = self._loop.time()
        reason = self.deadlines.expired(now, self.activity.last)
        if reason is not None:
            expired.set_result(reason)
            return
        if now >= self._next_budget_check and self._budget_task is None:
            self._next_budget_check = now + BUDGET_CHECK_SECONDS
            self._budget_task = asyncio.create_task(self._check_budget())
        if now >= self._next_token and self._token_task is None:
            self._next_token = now + RESUME_REFRESH_SECONDS
            self._token_task = asyncio.create_task(self._send_token())
        wake = min(
            self.deadlines.next_check(self.activity.last),
            self._next_budget_check,
            self._next_token,
        )
        self._timer = self._loop.call_at(max(wake, now + 0.001), self._check)

    def _rearm(self) -> None:
        """Look at the deadlines again now: one of them moved."""
        if self.expired is None or self.expired.done():
            return
        if self._timer is not None:
            self._timer.cancel()
        self._check()

    async def _check_budget(self) -> None:
        try:
            left = await self._read_budget()
        except Exception:
            logger.exception("Call %s: could not read the agent's budget.", self._label)
            left = None
        finally:
            self._budget_task = None
        if left is not None:
            self.deadlines.budget_until = self._loop.time() + max(0.0, left)
            self._rearm()

    async def _send_token(self) -> None:
        try:
            await self._renew_token()
        except Exception:
            logger.exception("Call %s: could not send a fresh resume token.", self._label)
        finally:
            self._token_task = None
