"""Signals the app sends, for site code to act on.

Every signal is sent with :func:`send_robustly`: a receiver that raises is logged (with
its traceback by Django's ``django.dispatch`` logger, and by ours with what it was about)
and never changes what the app does, so a broken receiver cannot break a call, a refusal
or a webhook. Receivers run where the event happens, synchronously: keep them quick, or
hand the work to a task queue. Where each one runs is said below.

``call_created``
    A visitor's call was created at VoiceHub (``sender=Call``). Arguments: ``call`` (the
    :class:`~webcall_widget.models.Call`, with its ``voicehub_call_id``), ``agent``,
    ``request`` (the create-call ``HttpRequest``, or None for a call started on the
    relay's start socket, as the widget starts them). Runs in the create-call request, or
    in a worker thread of the relay.

``call_live``
    The relay joined VoiceHub's channels and the visitor may talk (``sender=Call``).
    Arguments: ``call``. Runs in a worker thread of the relay, off its event loop.

``message_received``
    A final transcript message was stored, from the visitor or the agent
    (``sender=Call``). Arguments: ``call``, ``message`` (the
    :class:`~webcall_widget.models.TranscriptMessage`: ``role`` is ``"user"`` or
    ``"agent"``, ``text``, ``seq``). Partial messages are not sent, nor the unfinished
    ones stored when a call ends mid-sentence. Runs in a worker thread of the relay.

``call_ended``
    A call ended, sent once per call (``sender=Call``). Arguments: ``call``, ``reason``
    (``"visitor-ended"``, ``"agent-hangup"``, ``"idle"``, ``"relay-stopped"``, ...),
    ``status`` (``"ended"`` or ``"failed"``), ``duration`` (seconds the call was live, a
    float, or None if it never went live). Runs in a worker thread of the relay.

``limit_reached``
    A limit refused one of an agent's calls (see docs/limits.md). Sent with
    ``sender=Agent`` (the class) and keyword arguments:

    * ``agent``: the :class:`~webcall_widget.models.Agent`;
    * ``limit``: which limit, a :class:`~webcall_widget.models.Limit` value
      (``"client_rate"``, ``"agent_rate"``, ``"unconnected"``, ``"concurrent"``,
      ``"calls_per_day"`` or ``"minutes_per_day"``);
    * ``code``: the error code the visitor was answered with (``"rate_limited"``,
      ``"too_many_pending"``, ``"agent_busy"``, ``"daily_limit"``, ``"budget_exhausted"``);
    * ``client_key``: for the per-client limits, the client (its IPv4 address or IPv6
      /64), else ``""``.

    It is sent once per agent and limit per hour (per UTC day for the daily limits), not
    once per refused request, so a receiver may send an e-mail. Receivers run in the
    request that was refused.

``webhook_received``
    VoiceHub posted a new event to an agent's webhook; it is stored and processed (a
    retry of an event already stored is not sent again). ``sender=WebhookEvent``.
    Arguments: ``event`` (the :class:`~webcall_widget.models.WebhookEvent`, with its
    ``state``), ``agent``, ``event_type`` (``"CallStatusChanged"``,
    ``"RecordingsAvailable"``, ``"AnalysisResultReady"`` or a type the app does not
    know), ``payload`` (the JSON object as received), ``call`` (the matching ``Call``, or
    None). Runs in the webhook request, before VoiceHub gets its answer.

``analysis_ready``
    VoiceHub's analysis of a call was fetched and stored (``sender=CallAnalysis``).
    Arguments: ``analysis`` (the :class:`~webcall_widget.models.CallAnalysis`: ``summary``,
    ``sentiment_label``, ``main_topics``, ``resolution_status``, ``raw``, ...), ``agent``,
    ``call`` (the ``Call``, or None while VoiceHub's call id matches none of ours). Runs in
    the app's background fetch thread.

Example::

    from django.dispatch import receiver
    from webcall_widget.signals import call_ended, limit_reached

    @receiver(limit_reached)
    def tell_the_owner(sender, agent, limit, code, client_key, **kwargs):
        ...

    @receiver(call_ended)
    def count_minutes(sender, call, reason, status, duration, **kwargs):
        ...
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

call_created = Signal()
call_live = Signal()
message_received = Signal()
call_ended = Signal()
limit_reached = Signal()
webhook_received = Signal()
analysis_ready = Signal()

logger = logging.getLogger("webcall_widget.signals")

NAMES: dict[Signal, str] = {
    call_created: "call_created",
    call_live: "call_live",
    message_received: "message_received",
    call_ended: "call_ended",
    limit_reached: "limit_reached",
    webhook_received: "webhook_received",
    analysis_ready: "analysis_ready",
}


def send_robustly(
    signal: Signal,
    sender: Any,
    *,
    about: str,
    log: logging.Logger | None = None,
    **kwargs: Any,
) -> None:
    """Send ``signal`` to every receiver, whatever each one does.

    A receiver that raises is logged at ERROR on ``log`` (``webcall_widget.signals`` by
    default), naming the signal, the receiver and ``about`` (e.g. ``"Call 1234"``); the
    others still run and nothing is raised here.
    """
    name = NAMES.get(signal, "signal")
    try:
        results = signal.send_robust(sender=sender, **kwargs)
    except Exception:  # not a receiver: the dispatch itself (never seen, never fatal)
        (log or logger).exception("%s: could not send %s.", about, name)
        return
    for receiver, result in results:
        if isinstance(result, Exception):
            (log or logger).error(
                "%s: a %s receiver (%s) failed: %r",
                about,
                name,
                getattr(receiver, "__qualname__", repr(receiver)),
                result,
            )
