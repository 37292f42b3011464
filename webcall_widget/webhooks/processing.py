"""Storing a webhook event, then applying it to its call.

Store first: :func:`store` writes the event as it came, once per agent and event id, so a
retry from VoiceHub finds it and is acknowledged without being processed again. Then
:func:`process` applies it, and its ``state`` says what happened:

* ``processed``: ``CallStatusChanged`` set the call's VoiceHub status (a status older
  than the one the call has is kept in the event only: events may arrive out of order);
  ``RecordingsAvailable`` added the recordings to the call; ``AnalysisResultReady``
  stored the analysis as pending and queued its fetch (:mod:`.worker`);
* ``unmatched``: no call of this agent has the event's ``callId`` yet. VoiceHub can post
  before the create-call request has stored the call's id; :func:`call_appeared` (run by
  that request) processes such events as soon as the call is known, and the admin's
  *Process again* action does at any time. An analysis is fetched all the same;
* ``ignored``: an event type the app does not know: stored, acknowledged, shown;
* ``failed``: the event cannot be applied (no ``callId``, no ``analysisResultUrl``, an
  analysis URL that is not on the configured VoiceHub...); ``error`` says why.

The relay stays the authority on our own ``status`` of a call (it holds the live
session); VoiceHub's status is kept beside it, in ``voicehub_status``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from webcall_widget.models import (
    Agent,
    AnalysisState,
    Call,
    CallAnalysis,
    WebhookEvent,
    WebhookEventState,
)
from webcall_widget.webhooks import events
from webcall_widget.webhooks.analysis import resolve_analysis_url
from webcall_widget.webhooks.errors import AnalysisUrlRefused
from webcall_widget.webhooks.events import EventType, ParsedEvent
from webcall_widget.webhooks.worker import add_recordings, fetcher

logger = logging.getLogger("webcall_widget.webhooks")

ERROR_LENGTH = 2000
State = WebhookEventState


def store(agent: Agent, parsed: ParsedEvent) -> WebhookEvent | None:
    """Store a new event; None if this agent already has one with the same id (a retry)."""
    try:
        with transaction.atomic():
            return WebhookEvent.objects.create(
                agent=agent,
                event_id=parsed.key,
                event_type=parsed.event_type,
                voicehub_call_id=parsed.call_id,
                payload=parsed.payload,
            )
    except IntegrityError:
        if WebhookEvent.objects.filter(agent=agent, event_id=parsed.key).exists():
            return None
        raise


def process(event: WebhookEvent, *, upstream: str | None) -> None:
    """Apply a stored event to its call and record the outcome on it. Never raises.

    ``upstream``: the VoiceHub an analysis may be fetched from when the call is not known
    (for a known call, the one it was created on).
    """
    try:
        with transaction.atomic():
            state, call, error = _apply(event, upstream)
    except Exception as exc:
        logger.exception("Webhook event %s (%s): processing failed.", event.pk, event.event_type)
        state, call, error = State.FAILED, None, f"{type(exc).__name__}: {exc}"
    event.state = state
    event.call = call
    event.error = error[:ERROR_LENGTH]
    event.processed_at = timezone.now()
    event.save(update_fields=["state", "call", "error", "processed_at"])
    if error:
        logger.warning(
            "Webhook event %s (%s) of agent %s: %s", event.pk, event.event_type, event.agent, error
        )
    if state == State.UNMATCHED and _find_call(event) is not None:
        # The call was stored while this ran, after call_appeared had looked for events.
        _claim_and_process(event, upstream)


def call_appeared(call: Call) -> int:
    """Process the events that waited for this call (by its VoiceHub call id); how many.

    Each event is claimed first, so a webhook request and this never both process one.
    """
    if not call.voicehub_call_id:
        return 0
    waiting = WebhookEvent.objects.filter(
        agent_id=call.agent_id, voicehub_call_id=call.voicehub_call_id, state=State.UNMATCHED
    ).order_by("received_at", "pk")
    return sum(_claim_and_process(event, call.upstream_url or None) for event in waiting)


def call_created(sender: object, call: Call, **kwargs: object) -> None:
    """``call_created`` receiver: the events VoiceHub sent before the call's id was
    stored are processed now (:func:`call_appeared`)."""
    call_appeared(call)


def process_again(selected: Iterable[WebhookEvent], *, upstream: str | None) -> int:
    """Process events again, whatever their state (the admin's action); how many."""
    count = 0
    for event in selected:
        process(event, upstream=upstream)
        count += 1
    return count


def _claim_and_process(event: WebhookEvent, upstream: str | None) -> bool:
    claimed = WebhookEvent.objects.filter(pk=event.pk, state=State.UNMATCHED).update(
        state=State.RECEIVED
    )
    if claimed:
        process(event, upstream=upstream)
    return bool(claimed)


def _find_call(event: WebhookEvent) -> Call | None:
    if not event.voicehub_call_id:
        return None
    return Call.objects.filter(
        agent_id=event.agent_id, voicehub_call_id=event.voicehub_call_id
    ).first()


def _apply(event: WebhookEvent, upstream: str | None) -> tuple[str, Call | None, str]:
    """(state, call, error) for one event."""
    if event.event_type not in EventType._value2member_map_:
        return State.IGNORED, None, ""
    kind = EventType(event.event_type)
    if kind is EventType.ANALYSIS_RESULT_READY:
        return _analysis(event, upstream)
    if not event.voicehub_call_id:
        return State.FAILED, None, "the event names no callId"
    call = _find_call(event)
    if call is None:
        return State.UNMATCHED, None, ""
    if kind is EventType.CALL_STATUS_CHANGED:
        return _status(event, call)
    call = Call.objects.select_for_update().get(pk=call.pk)
    add_recordings(call, events.recordings_of(event.payload))
    return State.PROCESSED, call, ""


def _status(event: WebhookEvent, call: Call) -> tuple[str, Call | None, str]:
    status = events.status_of(event.payload)
    if not status:
        return State.FAILED, call, "the event has no status"
    at = events.parse_timestamp(event.payload.get("timestamp")) or event.received_at
    Call.objects.filter(pk=call.pk).filter(
        Q(voicehub_status_at__isnull=True) | Q(voicehub_status_at__lte=at)
    ).update(voicehub_status=status, voicehub_status_at=at)
    return State.PROCESSED, call, ""


def _analysis(event: WebhookEvent, upstream: str | None) -> tuple[str, Call | None, str]:
    payload = event.payload
    call = _find_call(event)
    base = call.upstream_url if call is not None and call.upstream_url else upstream
    if base is None:
        return State.FAILED, call, "no VoiceHub URL is configured to fetch the analysis from"
    try:
        source_url = resolve_analysis_url(payload.get("analysisResultUrl"), base)
    except AnalysisUrlRefused as exc:
        return State.FAILED, call, str(exc)
    analysis_id = events.identifier(payload.get("analysisId")) or event.event_id
    analysis, created = CallAnalysis.objects.get_or_create(
        agent_id=event.agent_id,
        analysis_id=analysis_id,
        defaults={
            "call": call,
            "voicehub_call_id": event.voicehub_call_id,
            "source_url": source_url,
        },
    )
    fetch = created
    if not created:
        changed = []
        if call is not None and analysis.call_id is None:
            analysis.call = call
            changed.append("call")
        if analysis.state == AnalysisState.FAILED:  # processed again: try again
            analysis.state = AnalysisState.PENDING
            analysis.source_url = source_url
            analysis.error = ""
            analysis.queued_at = timezone.now()
            changed += ["state", "source_url", "error", "queued_at"]
            fetch = True
        if changed:
            analysis.save(update_fields=changed)
    if fetch:
        fetcher.submit_on_commit(analysis.pk)
    if call is None and event.voicehub_call_id:
        return State.UNMATCHED, None, ""
    return State.PROCESSED, call, ""
