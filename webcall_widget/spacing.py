"""At most one of a kind every so many seconds: notices to a visitor, upstream errors."""

from __future__ import annotations

import math
from collections.abc import Callable


class Spacing:
    """Whether something of ``kind`` may happen now: not when one did less than
    ``interval`` seconds ago by ``clock``. Only what is let through starts a new interval."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}

    def due(self, kind: str = "") -> bool:
        now = self._clock()
        if now - self._last.get(kind, -math.inf) < self.interval:
            return False
        self._last[kind] = now
        return True
