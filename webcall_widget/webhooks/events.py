"""What VoiceHub documents about its call webhooks, and the pure reading of one.

Documented: each agent has a webhook URL; the secret set for it arrives verbatim in the
``x-webhook-secret`` header; the body is a JSON object whose ``eventType`` is one of

* ``CallStatusChanged`` ``{timestamp, eventId, status, callId, agentId?}``;
* ``RecordingsAvailable`` ``{..., recordings: [paths]}``;
* ``AnalysisResultReady`` ``{eventType, analysisId, analysisResultUrl, ...}``, whose result
  is fetched with a GET carrying the API key in ``x-dq-api-key``.

Statuses: started, queued, in-progress, completed, failed, cancelled, unanswered,
scheduled, busy.

Assumed, and read defensively: ``timestamp`` is ISO 8601 or a Unix time (seconds or
milliseconds); the other two events carry ``callId`` and ``eventId`` too (an event
without ``eventId`` is known by its ``analysisId``, else by a hash of its body).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import math
from dataclasses import dataclass
from typing import Any

from django.utils.dateparse import parse_datetime

from webcall_widget import storable
from webcall_widget.webhooks.errors import BadEvent

HEADER_SECRET = "x-webhook-secret"
HEADER_ANALYSIS_KEY = "x-dq-api-key"

KEY_LENGTH = 200  # WebhookEvent.event_id, CallAnalysis.analysis_id, the call ids
TYPE_LENGTH = 64
STATUS_LENGTH = 32
PATH_LENGTH = 2000
MAX_RECORDINGS = 100


class EventType(enum.StrEnum):
    CALL_STATUS_CHANGED = "CallStatusChanged"
    RECORDINGS_AVAILABLE = "RecordingsAvailable"
    ANALYSIS_RESULT_READY = "AnalysisResultReady"


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """A webhook body read as far as storing it needs."""

    key: str  # what makes a retry recognisable: eventId, else analysis:<id>, else a hash
    event_type: str  # as sent ("" when missing), known or not
    call_id: str  # VoiceHub's callId, "" when missing
    payload: dict[str, Any]


def parse_body(body: bytes) -> ParsedEvent:
    """Read a webhook body.

    Raises:
        BadEvent: it is not a JSON object.
    """
    try:
        payload = storable.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadEvent("the body is not JSON") from exc
    if not isinstance(payload, dict):
        raise BadEvent("the body is not a JSON object")
    event_type = payload.get("eventType")
    return ParsedEvent(
        key=event_key(payload, body),
        event_type=event_type[:TYPE_LENGTH] if isinstance(event_type, str) else "",
        call_id=identifier(payload.get("callId")),
        payload=payload,
    )


def identifier(value: Any) -> str:
    """An id from a payload (a string or an integer) as a string; "" if it is none."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    text = str(value).strip()
    return text if len(text) <= KEY_LENGTH else ""


def event_key(payload: dict[str, Any], body: bytes) -> str:
    """The id retries of one event share: VoiceHub's ``eventId``; for an event without
    one, ``analysis:<analysisId>``; else a hash of the body (a retry resends it as is)."""
    event_id = identifier(payload.get("eventId"))
    if event_id:
        return event_id
    analysis_id = identifier(payload.get("analysisId"))
    if analysis_id and len(analysis_id) <= KEY_LENGTH - len("analysis:"):
        return f"analysis:{analysis_id}"
    return "sha256:" + hashlib.sha256(body).hexdigest()


def parse_timestamp(value: Any) -> dt.datetime | None:
    """A timestamp as ISO 8601 (a naive one is UTC) or Unix time in seconds or
    milliseconds; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value) or value <= 0:
            return None
        seconds = value / 1000 if value > 1e11 else value  # 1e11 s is the year 5138
        try:
            return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and len(value) <= 64:
        try:
            parsed = parse_datetime(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed is None:
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
    return None


def status_of(payload: dict[str, Any]) -> str:
    """The ``status`` of a ``CallStatusChanged`` event ("" if there is none), as sent:
    a status VoiceHub adds later is kept too."""
    status = payload.get("status")
    if not isinstance(status, str):
        return ""
    return status.strip()[:STATUS_LENGTH]


def recordings_of(payload: dict[str, Any]) -> list[str]:
    """The recording paths of a ``RecordingsAvailable`` event; anything that is not a
    string is left out."""
    recordings = payload.get("recordings")
    if isinstance(recordings, str):
        recordings = [recordings]
    if not isinstance(recordings, list):
        return []
    paths = [r.strip() for r in recordings if isinstance(r, str) and r.strip()]
    return [p for p in paths if len(p) <= PATH_LENGTH][:MAX_RECORDINGS]
