"""What the relay writes to the database: call state changes and the transcript.

Plain synchronous ORM functions, plus :class:`DatabaseRecorder`, their asynchronous face
for the bridge (which takes any :class:`Recorder`, so that tests can give it one without a
database). Audio never comes here. Everything the upstream or a visitor can make long is
cut to its column's size here, before it is stored.

The signals for site code (``call_live``, ``message_received``, ``call_ended``) are sent
here, after the write they announce, in the worker thread that made it; a receiver that
fails is logged and changes nothing (:func:`webcall_widget.signals.send_robustly`).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from channels.db import database_sync_to_async
from django.db import transaction
from django.db.models import F, Max
from django.dispatch import Signal
from django.utils import timezone

from webcall_widget import storable
from webcall_widget.conf import Settings
from webcall_widget.limits import budget_seconds_left, caps_for
from webcall_widget.models import Agent, Call, CallStatus, TranscriptMessage
from webcall_widget.relay.budgets import shared_budgets
from webcall_widget.relay.protocol import CloseCode, message_frame
from webcall_widget.signals import call_ended, call_live, message_received, send_robustly
from webcall_widget.voicehub.address import ConnectContext
from webcall_widget.voicehub.monitor import UpstreamReport
from webcall_widget.voicehub.secret import Secret

logger = logging.getLogger("webcall_widget.relay")

# Column sizes (models.py) and a ceiling for transcript text, which has no column limit.
REASON_LENGTH = Call._meta.get_field("end_reason").max_length or 64
ERROR_CODE_LENGTH = Call._meta.get_field("error_code").max_length or 64
ERROR_DETAIL_LENGTH = 2000
MESSAGE_ID_LENGTH = TranscriptMessage._meta.get_field("upstream_id").max_length or 200
MESSAGE_TEXT_LENGTH = 20_000


def clip(text: str, length: int) -> str:
    """``text`` fit to store: cut to ``length`` characters (marked with an ellipsis when
    cut), without the NUL characters PostgreSQL refuses."""
    text = storable.text(text)
    return text if len(text) <= length else text[: length - 1] + "…"


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What the relay needs to know about a call, read once at connect."""

    call_id: uuid.UUID
    agent_id: int
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
    resume_seconds: int = 0  # how long the call waits for its visitor; 0: it does not
    resumes: int = 0  # Call.resumes: the count a resume token must name
    end_reason: str = ""
    connect: ConnectContext | None = None  # what the upstream socket's templates may use
    owner: str = ""  # the relay process holding it (Call.owner)
    origin: str = ""  # the page that created it
    live_for: float = 0.0  # seconds it had been live when it was read


@dataclass(frozen=True, slots=True)
class NewMessage:
    role: str
    text: str
    upstream_id: str
    final: bool

    def frame(self) -> str:
        """The message as the browser is shown it."""
        return message_frame(self.upstream_id, self.role, self.text, final=self.final)


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


@dataclass(slots=True)
class Counters:
    messages_from_visitor: int = 0
    messages_from_agent: int = 0
    audio_bytes_in: int = 0
    audio_bytes_out: int = 0
    audio_bytes_dropped_in: int = 0  # upstream read slower than the visitor spoke
    audio_bytes_dropped_out: int = 0  # the browser read slower than the agent spoke
    suspensions: int = 0
    suspended_seconds: float = 0.0
    # Filled in by the upstream session as the call goes (unknown events, findings).
    upstream: UpstreamReport = field(default_factory=UpstreamReport)


def load_call(call_id: uuid.UUID, settings: Settings) -> CallInfo | None:
    try:
        call = Call.objects.select_related("agent").get(pk=call_id)
    except Call.DoesNotExist:
        return None
    agent: Agent = call.agent
    caps = caps_for(agent, settings)
    return CallInfo(
        call_id=call.id,
        agent_id=agent.pk,
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
        resume_seconds=(
            settings.resume_seconds if agent.resume_seconds is None else agent.resume_seconds
        ),
        resumes=call.resumes,
        end_reason=call.end_reason,
        owner=call.owner,
        origin=call.origin,
        live_for=(timezone.now() - call.live_at).total_seconds() if call.live_at else 0.0,
        connect=ConnectContext(
            call_id=call.voicehub_call_id,
            agent_id=agent.voicehub_agent_id,
            api_key=Secret(agent.api_key),
        ),
    )


def load_transcript(call_id: uuid.UUID) -> list[NewMessage]:
    """The call's stored transcript, in order."""
    rows = TranscriptMessage.objects.filter(call_id=call_id).order_by("seq")
    return [
        NewMessage(role, text, upstream_id, final)
        for role, text, upstream_id, final in rows.values_list(
            "role", "text", "upstream_id", "final"
        )
    ]


def owner_of(call_id: uuid.UUID) -> str:
    """The relay process that holds the call now ("" when none or no such call)."""
    return Call.objects.filter(pk=call_id).values_list("owner", flat=True).first() or ""


def mark_live(call_id: uuid.UUID) -> None:
    went_live = Call.objects.filter(pk=call_id, status=CallStatus.CONNECTING).update(
        status=CallStatus.LIVE, live_at=timezone.now()
    )
    if went_live:
        _announce(call_live, call_id, lambda call: [{}])


def add_messages(call_id: uuid.UUID, messages: list[NewMessage]) -> None:
    if not messages:
        return
    with transaction.atomic():
        last = TranscriptMessage.objects.filter(call_id=call_id).aggregate(m=Max("seq"))["m"]
        start = 0 if last is None else last + 1
        stored = TranscriptMessage.objects.bulk_create(
            TranscriptMessage(
                call_id=call_id,
                seq=start + offset,
                role=m.role,
                text=clip(m.text, MESSAGE_TEXT_LENGTH),
                upstream_id=clip(m.upstream_id, MESSAGE_ID_LENGTH),
                final=m.final,
            )
            for offset, m in enumerate(messages)
        )
    final = [message for message in stored if message.final]
    if final:
        _announce(message_received, call_id, lambda call: [{"message": m} for m in final])


def finish(call_id: uuid.UUID, outcome: Outcome, counters: Counters, *, owner: str = "") -> bool:
    """Record the end of a call once; a second call changes nothing (and sends no
    ``call_ended``). With ``owner``, only while that relay process owns the call (one
    that took it over ends it, not the process it was taken from). Whether it ended."""
    fence = {"owner": owner} if owner else {}
    ended = Call.objects.filter(pk=call_id, ended_at__isnull=True, **fence).update(
        status=outcome.status,
        ended_at=timezone.now(),
        end_reason=clip(outcome.reason, REASON_LENGTH),
        error_code=clip(outcome.error_code, ERROR_CODE_LENGTH),
        error_detail=clip(outcome.detail, ERROR_DETAIL_LENGTH),
        messages_from_visitor=F("messages_from_visitor") + counters.messages_from_visitor,
        messages_from_agent=F("messages_from_agent") + counters.messages_from_agent,
        audio_bytes_in=F("audio_bytes_in") + counters.audio_bytes_in,
        audio_bytes_out=F("audio_bytes_out") + counters.audio_bytes_out,
        audio_bytes_dropped_in=F("audio_bytes_dropped_in") + counters.audio_bytes_dropped_in,
        audio_bytes_dropped_out=F("audio_bytes_dropped_out") + counters.audio_bytes_dropped_out,
        suspensions=F("suspensions") + counters.suspensions,
        suspended_seconds=F("suspended_seconds") + counters.suspended_seconds,
        upstream_unknown_events=F("upstream_unknown_events") + counters.upstream.unknown_events,
        upstream_bad_payloads=F("upstream_bad_payloads") + counters.upstream.bad_payloads,
        upstream_notes=clip(counters.upstream.notes(), ERROR_DETAIL_LENGTH),
    )
    if ended:
        _announce(
            call_ended,
            call_id,
            lambda call: [
                {
                    "reason": call.end_reason,
                    "status": call.status,
                    "duration": call.duration_seconds,
                }
            ],
        )
    return bool(ended)


def _announce(
    signal: Signal, call_id: uuid.UUID, sends: Callable[[Call], list[dict[str, Any]]]
) -> None:
    """Send ``signal`` once per item of ``sends(call)``, with ``call`` and the item.

    Loads the call only when someone listens; never raises: the write it announces is
    done, and the relay must not take a receiver's failure for the database's.
    """
    if not signal.has_listeners(Call):
        return
    try:
        call = Call.objects.select_related("agent").get(pk=call_id)
        for extra in sends(call):
            send_robustly(signal, Call, about=f"Call {call_id}", call=call, **extra)
    except Exception:
        logger.exception("Call %s: could not tell the site's receivers.", call_id)


aload_call = database_sync_to_async(load_call)
aload_transcript = database_sync_to_async(load_transcript)


class Recorder(Protocol):
    """Where the bridge records a call; each method may fail, the bridge copes."""

    async def mark_live(self, call_id: uuid.UUID) -> None: ...

    async def add_messages(self, call_id: uuid.UUID, messages: list[NewMessage]) -> None: ...

    async def finish(
        self, call_id: uuid.UUID, outcome: Outcome, counters: Counters, *, owner: str = ""
    ) -> None: ...

    async def budget_seconds_left(self, call: CallInfo) -> float | None: ...

    async def load_transcript(self, call_id: uuid.UUID) -> list[NewMessage]: ...

    async def owner_of(self, call_id: uuid.UUID) -> str: ...


class DatabaseRecorder:
    """The :class:`Recorder` of a running site: the ORM, off the event loop.

    ``read_budget`` is how an agent's remaining budget is read from the database
    (:func:`webcall_widget.limits.budget_seconds_left`).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        read_budget: Callable[[int, Settings], float | None] = budget_seconds_left,
    ) -> None:
        self.settings = settings
        self._read_budget = database_sync_to_async(read_budget)

    async def mark_live(self, call_id: uuid.UUID) -> None:
        await database_sync_to_async(mark_live)(call_id)

    async def add_messages(self, call_id: uuid.UUID, messages: list[NewMessage]) -> None:
        await database_sync_to_async(add_messages)(call_id, messages)

    async def finish(
        self, call_id: uuid.UUID, outcome: Outcome, counters: Counters, *, owner: str = ""
    ) -> None:
        await database_sync_to_async(finish)(call_id, outcome, counters, owner=owner)

    async def budget_seconds_left(self, call: CallInfo) -> float | None:
        """Shared by the agent's calls in this process (:mod:`.budgets`)."""
        day = timezone.now().astimezone(dt.UTC).date()  # budgets are per UTC day
        return await shared_budgets().seconds_left(
            (call.agent_id, self.settings.limits, day),
            partial(self._read_budget, call.agent_id, self.settings),
        )

    async def load_transcript(self, call_id: uuid.UUID) -> list[NewMessage]:
        return await aload_transcript(call_id)

    async def owner_of(self, call_id: uuid.UUID) -> str:
        return await database_sync_to_async(owner_of)(call_id)
