"""What keeps a call from going idle: a message either way, or audio that is not silence.

An open microphone sends frames all the time, silent or not, and so may an agent; counting
every frame would let a tab left open burn credits until the longest call allows. So audio
counts only when it is audible, and is looked at only once the call has been quiet for a
while: while people talk, no frame is inspected at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from webcall_widget.pcm import peak

AUDIBLE_PEAK = 0.02  # of full scale, about -34 dBFS: well above a suppressed room's hiss
RECHECK_SECONDS = 1.0


class Activity:
    """When the call was last active; ``recheck`` is how long after that audio is looked
    at again (at most a quarter of the idle timeout, so that speech is never missed)."""

    def __init__(
        self,
        idle_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self.recheck = min(RECHECK_SECONDS, idle_seconds / 4)
        self.last = clock()

    def message(self) -> None:
        self.last = self._clock()

    def audio(self, pcm: bytes) -> None:
        now = self._clock()
        if now - self.last >= self.recheck and peak(pcm) >= AUDIBLE_PEAK:
            self.last = now
