"""How fast a browser may send frames: a token bucket, without I/O."""

from __future__ import annotations

import time
from collections.abc import Callable


class FrameBudget:
    """``rate`` frames per second on average, with bursts of up to ``burst`` frames.

    Bursts matter: a widget sends the audio it captured while the socket was opening all
    at once (up to 100 frames).
    """

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    def take(self) -> bool:
        """Spend one frame; False when the budget is exhausted."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
