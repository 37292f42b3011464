"""``manage.py expire_webcalls`` closes the records of calls that cannot be going on."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from webcall_widget.limits import UPSTREAM_END_GRACE
from webcall_widget.models import Call, CallStatus

pytestmark = pytest.mark.django_db


def make_call(agent, status, age_seconds):
    call = Call.objects.create(agent=agent, mode="text", status=status)
    Call.objects.filter(pk=call.pk).update(
        created_at=timezone.now() - dt.timedelta(seconds=age_seconds)
    )
    return call


def expire() -> str:
    out = StringIO()
    call_command("expire_webcalls", stdout=out)
    return out.getvalue()


def reloaded(call):
    return Call.objects.get(pk=call.pk)


def test_a_call_whose_token_expired_unused_is_ended_as_never_connected(agent):
    call = make_call(agent, CallStatus.CREATED, 61)
    assert expire() == "1 never connected, 0 lost with their relay.\n"
    call = reloaded(call)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "never-connected")
    assert call.ended_at is not None


def test_a_call_whose_token_is_still_valid_is_left_alone(agent):
    call = make_call(agent, CallStatus.CREATED, 30)
    expire()
    assert reloaded(call).status == CallStatus.CREATED


@pytest.mark.parametrize("status", [CallStatus.CONNECTING, CallStatus.LIVE])
def test_a_call_older_than_the_longest_call_is_failed_as_relay_lost(agent_factory, status):
    agent = agent_factory(max_call_seconds=60)
    call = make_call(agent, status, 60 + 60 + 61)  # token age + longest call + margin
    assert expire() == "0 never connected, 1 lost with their relay.\n"
    call = reloaded(call)
    assert (call.status, call.end_reason, call.error_code) == (
        CallStatus.FAILED,
        "relay-lost",
        "relay_lost",
    )


def test_a_live_call_within_the_agents_longest_call_is_left_alone(agent_factory):
    agent = agent_factory(max_call_seconds=600)
    call = make_call(agent, CallStatus.LIVE, 300)
    expire()
    assert reloaded(call).status == CallStatus.LIVE


def test_ended_calls_keep_their_record(agent):
    call = make_call(agent, CallStatus.ENDED, 10_000)
    Call.objects.filter(pk=call.pk).update(end_reason="visitor-ended", ended_at=timezone.now())
    expire()
    assert reloaded(call).end_reason == "visitor-ended"


def live_call_voicehub_reported(agent_factory, status: str, seconds_ago: float) -> Call:
    """A live call of an hour-long agent, ten minutes old, whose VoiceHub status is
    ``status`` since ``seconds_ago``."""
    call = make_call(agent_factory(max_call_seconds=3600), CallStatus.LIVE, 600)
    Call.objects.filter(pk=call.pk).update(
        voicehub_status=status,
        voicehub_status_at=timezone.now() - dt.timedelta(seconds=seconds_ago),
    )
    return reloaded(call)


def test_a_live_call_voicehub_reported_over_is_failed_as_relay_lost_when_voicehub_said(
    agent_factory,
):
    grace = UPSTREAM_END_GRACE.total_seconds()
    call = live_call_voicehub_reported(agent_factory, "completed", grace + 1)
    assert expire() == "0 never connected, 1 lost with their relay.\n"
    ended = reloaded(call)
    assert (ended.status, ended.end_reason, ended.ended_at) == (
        CallStatus.FAILED,
        "relay-lost",
        call.voicehub_status_at,
    )
    assert "VoiceHub reported over" in ended.error_detail


def test_a_call_voicehub_reported_over_before_it_went_live_here_ends_when_it_went_live(
    agent_factory,
):
    """VoiceHub's clock may be behind ours: the call does not end before it began."""
    call = live_call_voicehub_reported(agent_factory, "completed", 500)
    live_at = timezone.now() - dt.timedelta(seconds=400)
    Call.objects.filter(pk=call.pk).update(live_at=live_at)
    expire()
    assert reloaded(call).ended_at == live_at


def test_a_call_voicehub_reported_over_moments_ago_is_left_to_its_relay(agent_factory):
    call = live_call_voicehub_reported(agent_factory, "failed", 10)
    expire()
    assert reloaded(call).status == CallStatus.LIVE


def test_a_call_voicehub_reports_in_progress_is_left_alone(agent_factory):
    call = live_call_voicehub_reported(agent_factory, "in-progress", 3600)
    expire()
    assert reloaded(call).status == CallStatus.LIVE


def test_an_ended_call_voicehub_reported_over_keeps_its_own_end(agent):
    call = make_call(agent, CallStatus.ENDED, 600)
    ended_at = timezone.now() - dt.timedelta(minutes=9)
    Call.objects.filter(pk=call.pk).update(
        end_reason="visitor-ended",
        ended_at=ended_at,
        voicehub_status="completed",
        voicehub_status_at=timezone.now() - dt.timedelta(minutes=8),
    )
    expire()
    call = reloaded(call)
    assert (call.end_reason, call.ended_at) == ("visitor-ended", ended_at)
