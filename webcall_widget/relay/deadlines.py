"""When a live call must end on its own: no I/O, no clock of its own.

A call has three deadlines: the longest it may last (fixed when it goes live), the day's
call-minute budget of its agent (re-read from time to time), and the idle timeout, which
moves every time someone says something (:class:`~webcall_widget.relay.activity.Activity`).
A fourth one runs while the visitor's socket is gone: the grace period for a resume. None
of them stops while the call waits for its visitor, and a resume moves none of them.
The bridge asks :meth:`Deadlines.expired` when the earliest of them comes, and
:meth:`Deadlines.next_check` when to ask again, so a call costs one timer, not one per
frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_DURATION = "max-duration"
BUDGET_EXHAUSTED = "budget-exhausted"
IDLE_TIMEOUT = "idle-timeout"
VISITOR_GONE = "visitor-disconnected"


@dataclass(slots=True)
class Deadlines:
    ends_at: float
    idle_seconds: float
    budget_until: float = math.inf
    resume_until: float = math.inf  # set while the visitor is away

    def expired(self, now: float, last_active: float) -> str | None:
        """Why the call must end at ``now``, or None if it may go on."""
        if now >= self.ends_at:
            return MAX_DURATION
        if now >= self.budget_until:
            return BUDGET_EXHAUSTED
        if now >= last_active + self.idle_seconds:
            return IDLE_TIMEOUT
        if now >= self.resume_until:
            return VISITOR_GONE
        return None

    def next_check(self, last_active: float) -> float:
        """The earliest time at which :meth:`expired` could answer something new."""
        return min(
            self.ends_at, self.budget_until, last_active + self.idle_seconds, self.resume_until
        )
