"""Audio that could not be sent on, either way: counted on the call, and told.

The agent's audio is dropped when the visitor's connection reads it slower than it comes
(their socket's outbox, or a full channel to their socket on another process); the
visitor's when VoiceHub reads it slower than they speak. Both are counted on the call
(``Call.audio_bytes_dropped_out`` / ``_in``) and on the metrics, and the visitor is told,
at most every :data:`NOTICE_SECONDS` for each way, so that a bad line explains itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from webcall_widget import metrics
from webcall_widget.relay import protocol
from webcall_widget.relay.records import Counters
from webcall_widget.spacing import Spacing
from webcall_widget.strings import visitor_message

logger = logging.getLogger("webcall_widget.relay")

NOTICE_SECONDS = 10.0


class Drops:
    def __init__(self, counters: Counters, label: str, clock: Callable[[], float]) -> None:
        self.counters = counters
        self._label = label
        self._notices = Spacing(NOTICE_SECONDS, clock)

    def to_visitor(self, size: int) -> None:
        """``size`` bytes of agent audio relayed to a browser did not reach it."""
        self.counters.audio_bytes_out -= size
        self.counters.audio_bytes_dropped_out += size
        metrics.audio_dropped("to_visitor", size)

    def to_visitor_told(self, size: int) -> str | None:
        """As :meth:`to_visitor`, for the socket holding the call: the frame that tells the
        visitor, now and then."""
        self.to_visitor(size)
        if not self._notices.due("connection_slow"):
            return None
        logger.info(
            "Call %s: the visitor's connection is slow; agent audio is dropped.", self._label
        )
        return protocol.error_frame("connection_slow", visitor_message("connection_slow"))

    def to_voicehub(self, size: int) -> str | None:
        """``size`` bytes of the visitor's audio VoiceHub could not take: the frame that
        tells the visitor, now and then."""
        self.counters.audio_bytes_dropped_in += size
        metrics.audio_dropped("to_voicehub", size)
        if not self._notices.due("upstream_slow"):
            return None
        logger.warning(
            "Call %s: VoiceHub reads the visitor's audio slower than it comes; audio is dropped.",
            self._label,
        )
        return protocol.error_frame("upstream_slow", visitor_message("upstream_slow"))
