"""Forgetting old conversations, for privacy laws: ``expire_webcalls --delete-older-than``
or the ``RETENTION_DAYS`` setting.

For calls created more than the given number of days ago, this deletes what a person
said or what identifies them: the transcripts, VoiceHub's analyses, the lists of
recordings, the raw webhook events; and it blanks the call's client IP and client, page
origin, user and error detail. The call itself stays, anonymous (agent, mode, status,
times, end reason, counters), so usage and limits keep their history. Webhook events and
analyses that never matched a call go by their own age, and the client last refused by a
limit (an IP address) is blanked on days that old. Calls still open are left alone.

Recordings stay at VoiceHub: delete them there too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from webcall_widget.models import Call, CallAnalysis, LimitHit, TranscriptMessage, WebhookEvent


@dataclass(frozen=True, slots=True)
class Forgotten:
    transcript_messages: int
    analyses: int
    webhook_events: int
    calls_anonymised: int


def forget_older_than(days: int, *, now: dt.datetime | None = None) -> Forgotten:
    """Delete and blank what is older than ``days`` days (see the module's docstring)."""
    if days < 1:
        raise ValueError("days must be 1 or more")
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    old = Call.objects.filter(created_at__lt=cutoff, ended_at__isnull=False)
    with transaction.atomic():
        messages, _ = TranscriptMessage.objects.filter(call__in=old).delete()
        analyses, _ = CallAnalysis.objects.filter(
            Q(call__in=old) | Q(call__isnull=True, requested_at__lt=cutoff)
        ).delete()
        events, _ = WebhookEvent.objects.filter(
            Q(call__in=old) | Q(received_at__lt=cutoff)
        ).delete()
        anonymised = old.filter(
            Q(client_ip__isnull=False)
            | Q(user__isnull=False)
            | ~Q(client_key="")
            | ~Q(origin="")
            | ~Q(error_detail="")
            | ~Q(recordings=[])
        ).update(
            client_ip=None,
            client_key="",
            origin="",
            user=None,
            error_detail="",
            recordings=[],
        )
        LimitHit.objects.filter(day__lt=cutoff.date()).exclude(last_client_key="").update(
            last_client_key=""
        )
    return Forgotten(messages, analyses, events, anonymised)
