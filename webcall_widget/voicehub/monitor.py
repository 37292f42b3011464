"""What the session notices about an upstream it may not fully understand.

For each call, a :class:`Monitor`:

* logs and counts events the protocol does not know and payloads it cannot read: the
  event's name and the payload's *shape* (strings cut, binary as a length, secrets
  hidden), the first few of each kind, then at most one line a minute with the count;
* lets an upstream error event through to the relay at most once every
  :data:`ERROR_INTERVAL` seconds, counting the rest;
* measures how fast agent audio arrives (:mod:`~webcall_widget.voicehub.rate`), and
  says once when the output sample rate looks wrong.

All of it lands in an :class:`UpstreamReport`, which the relay stores on the ``Call``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from webcall_widget.spacing import Spacing
from webcall_widget.voicehub.codecs import describe
from webcall_widget.voicehub.events import BadPayload, Unknown, UpstreamError
from webcall_widget.voicehub.rate import RateMeter, matches

logger = logging.getLogger("webcall_widget.voicehub")

ERROR_INTERVAL = 5.0  # seconds between upstream errors the visitor may be told about
LOG_FIRST = 3  # lines of one kind logged in full before the rate limit starts
LOG_EVERY = 60.0  # seconds between later lines of one kind


@dataclass
class UpstreamReport:
    """Counts and findings about one call's upstream, for its ``Call`` record."""

    unknown_events: int = 0
    bad_payloads: int = 0
    errors_held_back: int = 0
    unknown_names: Counter[str] = field(default_factory=Counter)
    findings: list[str] = field(default_factory=list)

    def notes(self) -> str:
        """One line per thing worth a look, for the admin."""
        lines = list(self.findings)
        if self.unknown_names:
            names = ", ".join(f"{name} ({n})" for name, n in self.unknown_names.most_common(10))
            lines.append(f"events the relay does not use: {names}")
        if self.bad_payloads:
            lines.append(f"{self.bad_payloads} event(s) with a payload the relay could not read")
        if self.errors_held_back:
            lines.append(
                f"{self.errors_held_back} upstream error event(s) not passed on to the visitor "
                f"(at most one every {ERROR_INTERVAL:g} s)"
            )
        return "\n".join(lines)


class _Limiter:
    """The first few lines of a kind, then one every ``LOG_EVERY`` seconds."""

    def __init__(self, clock: Callable[[], float], *, enabled: bool = True) -> None:
        self._clock = clock
        self._enabled = enabled
        self._seen: Counter[str] = Counter()
        self._next: dict[str, float] = {}
        self._held: Counter[str] = Counter()

    def allow(self, kind: str) -> int | None:
        """None: stay quiet; otherwise how many lines of this kind were held back."""
        if not self._enabled:
            return None
        self._seen[kind] += 1
        now = self._clock()
        if self._seen[kind] <= LOG_FIRST:
            self._next[kind] = now + LOG_EVERY
            return 0
        if now < self._next.get(kind, 0.0):
            self._held[kind] += 1
            return None
        self._next[kind] = now + LOG_EVERY
        held, self._held[kind] = self._held[kind], 0
        return held


class Monitor:
    def __init__(
        self,
        report: UpstreamReport,
        *,
        label: str,
        output_rate: int,
        clock: Callable[[], float],
        redact: Callable[[str], str],
        secrets: tuple[str, ...] = (),
        log: bool = True,
    ) -> None:
        self.report = report
        self.label = label
        self._clock = clock
        self._redact = redact
        self._secrets = secrets
        self._log = _Limiter(clock, enabled=log)
        self._errors = Spacing(ERROR_INTERVAL, clock)
        self._rate = RateMeter(output_rate)
        self._rate_reported = False

    def unknown(self, event: Unknown) -> None:
        report = self.report
        report.unknown_events += 1
        report.unknown_names[event.name[:80]] += 1
        held = self._log.allow(f"unknown:{event.name}")
        if held is not None:
            logger.warning(
                "VoiceHub call %s: ignored event %r %s (%d of this name so far%s). If the "
                "relay should use it, see UPSTREAM.EVENTS in docs/protocol-settings.md or run "
                "manage.py webcall_probe.",
                self.label,
                self._redact(event.name[:80]),
                self._shape(event.data),
                report.unknown_names[event.name[:80]],
                _held(held),
            )

    def bad(self, event: BadPayload) -> None:
        self.report.bad_payloads += 1
        held = self._log.allow(f"bad:{event.name}")
        if held is not None:
            logger.warning(
                "VoiceHub call %s: could not read event %r: %s; payload %s (%d so far%s).",
                self.label,
                self._redact(event.name[:80]),
                self._redact(event.problem),
                self._shape(event.data),
                self.report.bad_payloads,
                _held(held),
            )

    def error_allowed(self, event: UpstreamError) -> bool:
        """Whether this upstream error may reach the visitor now."""
        if self._errors.due():
            return True
        self.report.errors_held_back += 1
        held = self._log.allow("error")
        if held is not None:
            logger.warning(
                "VoiceHub call %s: upstream error not passed on to the visitor (at most one "
                "every %gs): %s (%d held back so far%s).",
                self.label,
                ERROR_INTERVAL,
                self._redact(event.message[:200]),
                self.report.errors_held_back,
                _held(held),
            )
        return False

    def audio(self, size: int) -> None:
        if self._rate_reported:
            return
        meter = self._rate
        observed = meter.feed(size, self._clock())
        if observed is None or matches(observed, meter.configured):
            return
        finding = meter.finding
        assert finding is not None
        self._rate_reported = True
        self.report.findings.append(finding.describe())
        if self._log.allow("rate") is None:
            return
        advice = (
            f" Set UPSTREAM.OUTPUT_SAMPLE_RATE to {finding.likely} if that is what VoiceHub sends."
            if finding.likely is not None
            else ""
        )
        logger.warning("VoiceHub call %s: %s.%s", self.label, finding.describe(), advice)

    def _shape(self, data: object) -> str:
        return self._redact(describe(data, secrets=self._secrets))


def _held(count: int) -> str:
    return f"; {count} similar line(s) not logged" if count else ""
