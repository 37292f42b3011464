"""The statuses VoiceHub gives a call in its ``CallStatusChanged`` webhooks (documented)."""

from __future__ import annotations

import enum


class VoiceHubStatus(enum.StrEnum):
    STARTED = "started"
    QUEUED = "queued"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNANSWERED = "unanswered"
    SCHEDULED = "scheduled"
    BUSY = "busy"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


# After one of these VoiceHub's side of the call is over.
FINAL_STATUSES = frozenset(
    {
        VoiceHubStatus.COMPLETED,
        VoiceHubStatus.FAILED,
        VoiceHubStatus.CANCELLED,
        VoiceHubStatus.UNANSWERED,
        VoiceHubStatus.BUSY,
    }
)
