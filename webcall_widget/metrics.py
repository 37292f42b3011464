"""What the relay counts as it goes, for an operator's dashboard.

The relay calls these functions where things happen; each is cheap and never raises.
With ``prometheus_client`` installed (the ``metrics`` extra) they feed the Prometheus
metrics of :data:`REGISTRY`, which the metrics endpoint serves (with this process's
gauges, :mod:`webcall_widget.health.gauges`); without it each is one function call that
does nothing.

=======================  ====================================================================
function                 when
=======================  ====================================================================
``call_started``         a call's relay started (mode)
``call_ended``           a call ended (mode, and its end reason)
``refused``              a call or a socket was refused (the error code the visitor got)
``audio_dropped``        audio was dropped: ``to_visitor`` (their connection is slow) or
                         ``to_voicehub`` (VoiceHub reads slower than the visitor speaks)
``upstream_error``       the upstream failed or sent an error (its error code)
``moved``                a call moved between processes: ``adopted``, ``handed_over``,
                         ``released``, ``rejoin_refused``, ``lost``; or a stopping process
                         let it go for the visitor to resume elsewhere (``left``) or ended
                         it (``stopped``, where VoiceHub refuses rejoins)
``frame_latency``        seconds one upstream frame took to reach the browser's socket
                         (called for a sample of frames, not every one)
=======================  ====================================================================

Labels take known values only, so that the number of series stays small whatever
VoiceHub sends: an end reason or an error code this module does not know (VoiceHub's own
words, a custom protocol's codes) is counted as ``other``. No label ever carries a call
id, an origin or a visitor's address.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Histogram

INSTALL = 'pip install "django-webcall-widget[metrics]"'
OTHER = "other"
PREFIX = "webcall_"

MODES = frozenset({"text", "WebAudio", "TextAudio"})
DIRECTIONS = frozenset({"to_visitor", "to_voicehub"})
MOVES = frozenset(
    {"adopted", "handed_over", "released", "rejoin_refused", "lost", "left", "stopped"}
)

# Every code of webcall_widget.strings.ERRORS (tests/test_metrics.py keeps them equal): what
# a visitor is refused with, and what VoiceHub's errors are called here.
ERROR_CODES = frozenset(
    {
        "access_denied",
        "agent_busy",
        "agent_disabled",
        "agent_misconfigured",
        "agent_not_found",
        "audio_failed",
        "audio_not_allowed",
        "bad_token",
        "budget_exhausted",
        "call_over",
        "connection_slow",
        "daily_limit",
        "dropped",
        "empty_message",
        "ended_by_staff",
        "frame_too_large",
        "insufficient_credits",
        "invalid_api_key",
        "invalid_request",
        "login_required",
        "lost_while_away",
        "malformed_frame",
        "message_too_long",
        "mic_busy",
        "mic_denied",
        "mic_insecure",
        "mic_missing",
        "mode_not_allowed",
        "network",
        "not_ready",
        "operation_not_allowed",
        "origin_not_allowed",
        "rate_limited",
        "relay_error",
        "restarting",
        "resume_failed",
        "staff_only",
        "taken_over",
        "text_not_allowed",
        "timeout",
        "token_used",
        "too_many_pending",
        "unknown_call",
        "upstream_bad_response",
        "upstream_error",
        "upstream_failed",
        "upstream_join_timeout",
        "upstream_lost",
        "upstream_slow",
        "upstream_unavailable",
    }
)

# How a call ends: the relay's own reasons, every error code spelled as a reason
# (``frame-too-large``), and the reasons VoiceHub is known to give.
END_REASONS = frozenset(
    {
        "agent-ended",
        "agent-hangup",
        "budget-exhausted",
        "create-failed",
        "ended",
        "ended-by-staff",
        "frame-rate-limit",
        "idle-timeout",
        "max-duration",
        "never-connected",
        "relay-busy",
        "relay-error",
        "relay-lost",
        "relay-stopped",
        "rejoin-refused",
        "upstream-ended",
        "visitor-disconnected",
        "visitor-ended",
        *(code.replace("_", "-") for code in ERROR_CODES),
    }
)

# Seconds: from a tenth of a millisecond (a frame handed straight on) to a quarter of a
# second (a process that cannot keep up); 100 ms is already audible.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


def _known(value: object, known: frozenset[str]) -> str:
    return str(value) if value in known else OTHER


@dataclass(frozen=True, slots=True)
class _Metrics:
    registry: CollectorRegistry
    started: Counter
    ended: Counter
    refused: Counter
    dropped: Counter
    upstream_errors: Counter
    moved: Counter
    latency: Histogram


def _build() -> _Metrics | None:
    try:
        from prometheus_client import CollectorRegistry, Counter, Histogram
    except ImportError:  # the metrics extra is not installed
        return None
    registry = CollectorRegistry(auto_describe=True)

    def counter(name: str, doc: str, labels: Iterable[str]) -> Counter:
        return Counter(PREFIX + name, doc, list(labels), registry=registry)

    metrics = _Metrics(
        registry=registry,
        started=counter("calls_started", "Calls whose relay started, by mode.", ["mode"]),
        ended=counter("calls_ended", "Calls that ended, by mode and reason.", ["mode", "reason"]),
        refused=counter("refusals", "Calls or sockets refused, by the visitor's error.", ["code"]),
        dropped=counter(
            "audio_dropped_bytes",
            "Audio bytes dropped: to_visitor (a slow visitor), to_voicehub (a slow upstream).",
            ["direction"],
        ),
        upstream_errors=counter(
            "upstream_errors", "Upstream failures and error events, by code.", ["code"]
        ),
        moved=counter("calls_moved", "Calls that moved between relay processes.", ["how"]),
        latency=Histogram(
            PREFIX + "frame_latency_seconds",
            "Seconds from an upstream frame's arrival to the browser's socket (sampled).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
    )
    # Series that exist from the start, so that rate() has a zero to start from.
    for mode in MODES:
        metrics.started.labels(mode)
    for direction in DIRECTIONS:
        metrics.dropped.labels(direction)
    for how in MOVES:
        metrics.moved.labels(how)
    return metrics


_METRICS = _build()

REGISTRY: CollectorRegistry | None = _METRICS.registry if _METRICS is not None else None
"""The counters and the histogram (None without ``prometheus_client``)."""


def available() -> bool:
    """Whether ``prometheus_client`` is installed, so that something is counted."""
    return _METRICS is not None


def call_started(mode: str) -> None:
    """A call's relay started."""
    if _METRICS is not None:
        _METRICS.started.labels(_known(mode, MODES)).inc()


def call_ended(mode: str, reason: str) -> None:
    """A call ended, for ``reason``."""
    if _METRICS is not None:
        _METRICS.ended.labels(_known(mode, MODES), _known(reason, END_REASONS)).inc()


def refused(code: str) -> None:
    """A call or a socket was refused with the error ``code``."""
    if _METRICS is not None:
        _METRICS.refused.labels(_known(code, ERROR_CODES)).inc()


def audio_dropped(direction: str, size: int) -> None:
    """``size`` bytes of audio were dropped on their way ``direction``."""
    if _METRICS is not None and size > 0:
        _METRICS.dropped.labels(_known(direction, DIRECTIONS)).inc(size)


def upstream_error(code: str) -> None:
    """The upstream failed, or sent an error event."""
    if _METRICS is not None:
        _METRICS.upstream_errors.labels(_known(code, ERROR_CODES)).inc()


def moved(how: str) -> None:
    """A call moved between relay processes (see the table above)."""
    if _METRICS is not None:
        _METRICS.moved.labels(_known(how, MOVES)).inc()


def frame_latency(seconds: float) -> None:
    """One upstream frame took ``seconds`` to reach the browser's socket."""
    if _METRICS is not None and seconds >= 0:
        _METRICS.latency.observe(seconds)
