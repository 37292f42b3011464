"""``manage.py expire_webcalls`` closes the records of calls that cannot be going on."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

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
