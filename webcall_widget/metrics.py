"""What the relay counts as it goes, for an operator's dashboard.

The relay calls these functions where things happen; each is cheap and never raises.
With ``prometheus_client`` installed (the ``metrics`` extra) they feed Prometheus
metrics, served by the metrics endpoint; without it they do nothing.

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
                         ``released``, ``rejoin_refused``, ``lost``
``frame_latency``        seconds one upstream frame took to reach the browser's socket
=======================  ====================================================================
"""

from __future__ import annotations


def call_started(mode: str) -> None:
    """A call's relay started."""


def call_ended(mode: str, reason: str) -> None:
    """A call ended, for ``reason``."""


def refused(code: str) -> None:
    """A call or a socket was refused with the error ``code``."""


def audio_dropped(direction: str, size: int) -> None:
    """``size`` bytes of audio were dropped on their way ``direction``."""


def upstream_error(code: str) -> None:
    """The upstream failed, or sent an error event."""


def moved(how: str) -> None:
    """A call moved between relay processes (see the table above)."""


def frame_latency(seconds: float) -> None:
    """One upstream frame took ``seconds`` to reach the browser's socket."""
