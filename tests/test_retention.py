"""``expire_webcalls --delete-older-than DAYS`` (or ``RETENTION_DAYS``) forgets old
conversations and keeps anonymous call records."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from webcall_widget.models import (
    Call,
    CallAnalysis,
    CallStatus,
    Limit,
    LimitHit,
    TranscriptMessage,
    WebhookEvent,
)

pytestmark = pytest.mark.django_db


def ended_call(agent, days_ago, **fields):
    """A call that ended ``days_ago`` days ago, with a transcript, an analysis, a webhook
    event and everything that identifies its visitor."""
    when = timezone.now() - dt.timedelta(days=days_ago)
    call = Call.objects.create(
        agent=agent,
        mode="text",
        status=CallStatus.ENDED,
        voicehub_call_id=f"vh-{days_ago}",
        client_ip="203.0.113.9",
        client_key="203.0.113.9",
        origin="https://shop.example",
        error_detail="upstream said something",
        recordings=["recordings/1.wav"],
        end_reason="visitor-ended",
        **fields,
    )
    Call.objects.filter(pk=call.pk).update(created_at=when, live_at=when, ended_at=when)
    TranscriptMessage.objects.create(call=call, seq=0, role="user", text="my address is ...")
    CallAnalysis.objects.create(
        agent=agent, call=call, analysis_id=f"an-{days_ago}", source_url="x"
    )
    WebhookEvent.objects.create(agent=agent, call=call, event_id=f"ev-{days_ago}", payload={})
    WebhookEvent.objects.filter(call=call).update(received_at=when)
    return call


def expire(*args) -> str:
    out = StringIO()
    call_command("expire_webcalls", *args, stdout=out)
    return out.getvalue()


def test_old_calls_lose_their_transcript_analysis_and_webhook_events(agent):
    call = ended_call(agent, 40)
    output = expire("--delete-older-than", "30")
    assert not TranscriptMessage.objects.filter(call=call).exists()
    assert not CallAnalysis.objects.exists()
    assert not WebhookEvent.objects.exists()
    assert output.splitlines()[-1] == (
        "Older than 30 days: deleted 1 transcript messages, 1 analyses and 1 webhook events; "
        "anonymised 1 calls."
    )


def test_old_calls_are_kept_without_what_identifies_the_visitor(agent, admin_user):
    call = ended_call(agent, 40, user=admin_user)
    expire("--delete-older-than", "30")
    call.refresh_from_db()
    assert (call.client_ip, call.client_key, call.origin, call.user) == (None, "", "", None)
    assert (call.error_detail, call.recordings) == ("", [])
    assert (call.status, call.end_reason, call.voicehub_call_id) == (
        "ended",
        "visitor-ended",
        "vh-40",
    )


def test_recent_calls_keep_everything(agent):
    call = ended_call(agent, 10)
    expire("--delete-older-than", "30")
    call.refresh_from_db()
    assert call.client_ip == "203.0.113.9"
    assert (TranscriptMessage.objects.count(), CallAnalysis.objects.count()) == (1, 1)
    assert WebhookEvent.objects.count() == 1


def test_a_second_run_finds_nothing_more_to_forget(agent):
    ended_call(agent, 40)
    expire("--delete-older-than", "30")
    assert expire("--delete-older-than", "30").splitlines()[-1] == (
        "Older than 30 days: deleted 0 transcript messages, 0 analyses and 0 webhook events; "
        "anonymised 0 calls."
    )


def test_old_events_and_analyses_that_never_matched_a_call_go_by_their_own_age(agent):
    old = WebhookEvent.objects.create(agent=agent, event_id="old", payload={})
    WebhookEvent.objects.filter(pk=old.pk).update(
        received_at=timezone.now() - dt.timedelta(days=40)
    )
    WebhookEvent.objects.create(agent=agent, event_id="new", payload={})
    stale = CallAnalysis.objects.create(agent=agent, analysis_id="old", source_url="x")
    CallAnalysis.objects.filter(pk=stale.pk).update(
        requested_at=timezone.now() - dt.timedelta(days=40)
    )
    expire("--delete-older-than", "30")
    assert list(WebhookEvent.objects.values_list("event_id", flat=True)) == ["new"]
    assert not CallAnalysis.objects.exists()


def test_the_client_last_refused_is_blanked_on_old_days(agent):
    old_day = (timezone.now() - dt.timedelta(days=40)).date()
    LimitHit.objects.create(
        agent=agent,
        day=old_day,
        limit=Limit.CONCURRENT,
        count=3,
        last_at=timezone.now(),
        last_client_key="203.0.113.9",
    )
    expire("--delete-older-than", "30")
    hit = LimitHit.objects.get()
    assert (hit.count, hit.last_client_key) == (3, "")


def test_the_retention_setting_applies_without_the_option(agent, settings):
    settings.WEBCALL_WIDGET = {**settings.WEBCALL_WIDGET, "RETENTION_DAYS": 30}
    ended_call(agent, 40)
    assert "Older than 30 days" in expire()
    assert not TranscriptMessage.objects.exists()


def test_without_the_option_or_the_setting_nothing_is_forgotten(agent):
    ended_call(agent, 4000)
    assert expire() == "0 never connected, 0 lost with their relay.\n"
    assert TranscriptMessage.objects.count() == 1


def test_a_retention_of_zero_days_is_refused(agent):
    with pytest.raises(CommandError, match="1 or more"):
        expire("--delete-older-than", "0")
