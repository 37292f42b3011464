"""How fast agent audio really plays, from how fast it arrives; without I/O.

An agent that streams its voice paced in real time sends as many samples per second as
its sample rate. So when PCM16 keeps arriving, over a stretch of at least
:data:`MIN_RUN_SECONDS` without a pause, at a rate far from ``OUTPUT_SAMPLE_RATE``, the
setting is probably wrong: 24 kHz audio played as 16 kHz sounds 1.5 times slow.
"""

from __future__ import annotations

from dataclasses import dataclass

COMMON_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)
MIN_RUN_SECONDS = 1.5  # of continuous arrival, before a run tells anything
# A longer pause ends a run: the agent stopped talking. A pause inside a run reads as
# slower audio (0.25 s between a greeting and the next sentence read 24 kHz as 20 kHz).
MAX_GAP_SECONDS = 0.1
TOLERANCE = 0.15  # within ±15% of the setting: fine
SNAP = 0.07  # within ±7% of a common rate: that rate


@dataclass(frozen=True, slots=True)
class RateFinding:
    """What a run of agent audio said about the output sample rate."""

    configured: int
    observed: float  # samples per second
    likely: int | None  # the common rate it is close to, if any

    @property
    def ratio(self) -> float:
        return self.observed / self.configured

    @property
    def matches(self) -> bool:
        return matches(self.observed, self.configured)

    def describe(self) -> str:
        if self.likely is not None:
            return (
                f"output sample rate looks like {self.likely} Hz: agent audio arrives at "
                f"about {self.observed:.0f} samples/s, while UPSTREAM.OUTPUT_SAMPLE_RATE is "
                f"{self.configured}"
            )
        speed = "faster" if self.ratio > 1 else "slower"
        return (
            f"agent audio arrives {self.ratio:.1f}x {speed} than real time at "
            f"UPSTREAM.OUTPUT_SAMPLE_RATE {self.configured} ({self.observed:.0f} samples/s); "
            "if it plays too fast or too slow, the setting is wrong (an agent that sends "
            "its audio in bursts ahead of time looks like this too)"
        )


def matches(observed: float, configured: int) -> bool:
    """Whether ``observed`` samples per second are close enough to the ``configured`` rate."""
    return abs(observed / configured - 1) <= TOLERANCE


def likely_rate(observed: float) -> int | None:
    best = min(COMMON_RATES, key=lambda rate: abs(rate - observed))
    return best if abs(best - observed) <= SNAP * best else None


class RateMeter:
    """Feed it every chunk of agent audio with its arrival time; :attr:`finding` is set
    once a long enough run has been measured (the latest such run wins). Feeding is
    arithmetic only: it runs for every 20 ms frame of every call.

    A run's rate is the slope of a least-squares line through (arrival time, samples so
    far), not the samples over the time from first to last chunk: on a busy machine one
    late chunk at either end of a run moved that by several percent, enough to read 24 kHz
    as 22.05 kHz, and moves the slope by little."""

    def __init__(self, configured: int, *, min_run: float = MIN_RUN_SECONDS) -> None:
        self.configured = configured
        self.min_run = min_run
        self.observed: float | None = None  # samples per second of the latest measured run
        self._start = 0.0
        self._last = -1e9
        self._samples = 0.0
        # sums over the run's chunks of 1, t, y, t*t and t*y (t: seconds since the run
        # began, y: samples received by then)
        self._n = self._st = self._sy = self._stt = self._sty = 0.0

    @property
    def finding(self) -> RateFinding | None:
        observed = self.observed
        if observed is None:
            return None
        return RateFinding(self.configured, observed, likely_rate(observed))

    def feed(self, size: int, now: float) -> float | None:
        """Count ``size`` bytes arriving at ``now`` (seconds); the run's rate in samples
        per second if this chunk completed or extended a measurable run."""
        if now - self._last > MAX_GAP_SECONDS:
            # A new run: its first chunk only marks the start (it arrived "at once").
            self._start, self._last, self._samples = now, now, 0.0
            self._n, self._st, self._sy, self._stt, self._sty = 1.0, 0.0, 0.0, 0.0, 0.0
            return None
        self._last = now
        self._samples += size / 2
        t, y = now - self._start, self._samples
        self._n += 1
        self._st += t
        self._sy += y
        self._stt += t * t
        self._sty += t * y
        if t < self.min_run:
            return None
        spread = self._n * self._stt - self._st * self._st
        if spread <= 0:
            return None
        self.observed = (self._n * self._sty - self._st * self._sy) / spread
        return self.observed
