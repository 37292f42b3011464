"""What the relay writes to the database: call state changes and the transcript.

Plain synchronous ORM functions, plus ``a*`` wrappers for the consumer's event loop.
Audio never comes here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from webcall_widget.conf import Settings
from webcall_widget.limits import caps_for
from webcall_widget.models import Agent, Call, CallStatus, TranscriptMessage
from webcall_widget.relay.protocol import CloseCode


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What the relay needs to know about a call, read once at connect."""

    call_id: uuid.UUID
    mode: str
    status: str
    voicehub_call_id: str
    upstream_url: str
    upstream_socket_path: str
    agent_active: bool
    agent_origins: tuple[str, ...]
    access: str
    user_id: int | None
    max_call_seconds: int
    idle_seconds: int


@dataclass(frozen=True, slots=True)
class NewMessage:
    role: str
    text: str
    upstream_id: str
    final: bool


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a call ended."""

    status: CallStatus
    reason: str
    error_code: str = ""
    detail: str = ""  # for the site owner: stored on the Call, logged
    visitor_message: str = ""  # for the visitor: sent in an error frame before the end
    close_code: CloseCode = CloseCode.NORMAL
    by_upstream: bool = False  # VoiceHub ended the call itself


@dataclass
class Counters:
    messages_from_visitor: int = 0
    messages_from_agent: int = 0
    audio_bytes_in: int = 0
    audio_bytes_out: int = 0


def load_call(call_id: uuid.UUID, settings: Settings) -> CallInfo | None:
    try:
        call = Call.objects.select_related("agent").get(pk=call_id)
    except Call.DoesNotExist:
        return None
    agent: Agent = call.agent
    caps = caps_for(agent, settings)
    return CallInfo(
        call_id=call.id,
        mode=call.mode,
        status=call.status,
        voicehub_call_id=call.voicehub_call_id,
        upstream_url=call.upstream_url,
        upstream_socket_path=call.upstream_socket_path,
        agent_active=agent.is_active,
        agent_origins=tuple(agent.origin_list),
        access=agent.access,
        user_id=call.user_id,
        max_call_seconds=caps.max_call_seconds,
        idle_seconds=settings.limits.idle_seconds,
    )


def mark_live(call_id: uuid.UUID) -> None:
    Call.objects.filter(pk=call_id, status=CallStatus.CONNECTING).update(
        status=CallStatus.LIVE, live_at=timezone.now()
    )


def add_messages(call_id: uuid.UUID, messages: list[NewMessage]) -> None:
    if not messages:
        return
    with transaction.atomic():
        last = TranscriptMessage.objects.filter(call_id=call_id).aggregate(m=Max("seq"))["m"]
        start = 0 if last is None else last + 1
        TranscriptMessage.objects.bulk_create(
            TranscriptMessage(
                call_id=call_id,
                seq=start + offset,
                role=m.role,
                text=m.text,
                upstream_id=m.upstream_id,
                final=m.final,
            )
            for offset, m in enumerate(messages)
        )


def finish(call_id: uuid.UUID, outcome: Outcome, counters: Counters) -> None:
    """Record the end of a call once; a second call changes nothing."""
    Call.objects.filter(pk=call_id, ended_at__isnull=True).update(
        status=outcome.status,
        ended_at=timezone.now(),
        end_reason=outcome.reason,
        error_code=outcome.error_code,
        error_detail=outcome.detail[:2000],
        messages_from_visitor=F("messages_from_visitor") + counters.messages_from_visitor,
        messages_from_agent=F("messages_from_agent") + counters.messages_from_agent,
        audio_bytes_in=F("audio_bytes_in") + counters.audio_bytes_in,
        audio_bytes_out=F("audio_bytes_out") + counters.audio_bytes_out,
    )


aload_call = database_sync_to_async(load_call)
amark_live = database_sync_to_async(mark_live)
aadd_messages = database_sync_to_async(add_messages)
afinish = database_sync_to_async(finish)
