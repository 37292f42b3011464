"""The site owner's view of use: per agent and UTC day, and the CSV export of calls."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from webcall_widget.models import (
    AnalysisState,
    Call,
    CallAnalysis,
    CallStatus,
    Limit,
    LimitHit,
    TranscriptMessage,
)
from webcall_widget.usage import usage

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 5, 10)
NOON = dt.datetime(2026, 5, 10, 12, tzinfo=dt.UTC)


def call_on(agent, when=NOON, *, talked=None, reason="", connected=True, **fields):
    call = Call.objects.create(agent=agent, mode="text", **fields)
    changes = {"created_at": when, "end_reason": reason}
    if connected:
        changes["connected_at"] = when
    if talked is not None:
        changes.update(live_at=when, ended_at=when + dt.timedelta(seconds=talked))
    Call.objects.filter(pk=call.pk).update(**changes)
    return call


def hits(agent, limit, count, day=TODAY):
    LimitHit.objects.create(agent=agent, day=day, limit=limit, count=count, last_at=NOON)


def test_calls_created_and_connected_are_counted_per_agent_and_day(agent_factory):
    first, second = agent_factory(name="A"), agent_factory(name="B")
    call_on(first)
    call_on(first, connected=False)
    call_on(second)
    call_on(first, NOON - dt.timedelta(days=1))
    report = usage(7, today=TODAY)
    assert [(d.day, d.agent and d.agent.name, d.created, d.connected) for d in report.days] == [
        (TODAY, "A", 2, 1),
        (TODAY, "B", 1, 1),
        (TODAY - dt.timedelta(days=1), "A", 1, 1),
    ]
    assert (report.created, report.connected) == (4, 3)


def test_days_are_utc_days(agent):
    call_on(agent, dt.datetime(2026, 5, 9, 23, 59, tzinfo=dt.UTC))
    call_on(agent, dt.datetime(2026, 5, 10, 0, 0, tzinfo=dt.UTC))
    assert [(d.day, d.created) for d in usage(7, today=TODAY).days] == [
        (TODAY, 1),
        (TODAY - dt.timedelta(days=1), 1),
    ]


def test_only_the_days_asked_for_are_counted(agent):
    call_on(agent, NOON - dt.timedelta(days=7))
    call_on(agent, NOON - dt.timedelta(days=6))
    assert [d.day for d in usage(7, today=TODAY).days] == [TODAY - dt.timedelta(days=6)]


def test_refusals_are_counted_per_limit_even_on_days_without_calls(agent):
    hits(agent, Limit.CONCURRENT, 3)
    hits(agent, Limit.CLIENT_RATE, 5)
    (day,) = usage(7, today=TODAY).days
    assert day.created == 0
    assert day.refused == {Limit.CONCURRENT: 3, Limit.CLIENT_RATE: 5}
    assert day.refused_by_limit() == [
        ("new calls per client per minute", 5),
        ("calls open at once", 3),
    ]


def test_minutes_talked_add_up_the_calls_from_live_to_end(agent):
    call_on(agent, talked=90)
    call_on(agent, talked=30)
    call_on(agent)  # never went live
    (day,) = usage(7, today=TODAY).days
    assert day.minutes_talked == pytest.approx(2.0)


def test_the_most_common_end_reasons_come_first(agent):
    for reason in ["visitor-ended"] * 3 + ["idle"] * 2 + ["agent-hangup", "relay-lost"]:
        call_on(agent, reason=reason)
    call_on(agent, reason="relay-lost")
    (day,) = usage(7, today=TODAY).days
    assert day.end_reasons == [("visitor-ended", 3), ("idle", 2), ("relay-lost", 2)]


def test_one_agent_can_be_chosen(agent_factory):
    first, second = agent_factory(), agent_factory()
    call_on(first)
    call_on(second)
    assert [d.agent for d in usage(7, agent_id=second.pk, today=TODAY).days] == [second]


def test_the_usage_page_shows_a_row_per_agent_and_day(admin_client, agent_factory):
    agent = agent_factory(name="Help desk")
    now = timezone.now()
    call_on(agent, now - dt.timedelta(minutes=5), talked=120, reason="visitor-ended")
    hits(agent, Limit.CALLS_PER_DAY, 4, day=now.astimezone(dt.UTC).date())
    page = admin_client.get(reverse("admin:webcall_widget_agent_usage"))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Help desk" in text
    assert "calls per day: 4" in text
    assert "visitor-ended: 1" in text
    assert "2.0" in text


def test_the_usage_page_is_linked_from_the_agent_list(admin_client, agent):
    page = admin_client.get(reverse("admin:webcall_widget_agent_changelist"))
    assert reverse("admin:webcall_widget_agent_usage") in page.content.decode()


def test_the_usage_page_needs_permission_to_see_calls(client, django_user_model):
    user = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(user)
    assert client.get(reverse("admin:webcall_widget_agent_usage")).status_code == 403


# the CSV export


def export(admin_client, *calls):
    response = admin_client.post(
        reverse("admin:webcall_widget_call_changelist"),
        {"action": "export_csv", "_selected_action": [str(c.pk) for c in calls]},
    )
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="webcalls-')
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))


def test_the_export_has_a_row_per_selected_call_with_its_transcript(admin_client, agent):
    call = call_on(agent, talked=42, reason="visitor-ended", voicehub_call_id="vh-1")
    call_on(agent)  # not selected
    for seq, (role, text) in enumerate([("agent", "Hi!"), ("user", "Hello\nthere")]):
        TranscriptMessage.objects.create(call=call, seq=seq, role=role, text=text)
    (row,) = export(admin_client, call)
    assert row["call"] == str(call.pk)
    assert (row["agent"], row["voicehub_call_id"], row["end_reason"]) == (
        agent.slug,
        "vh-1",
        "visitor-ended",
    )
    assert row["duration_seconds"] == "42.0"
    assert row["transcript"] == "Agent: Hi!\nVisitor: Hello\nthere"


def test_the_export_carries_the_calls_analysis(admin_client, agent):
    call = call_on(agent)
    CallAnalysis.objects.create(
        agent=agent,
        call=call,
        analysis_id="an-1",
        source_url="https://voicehub.example/a/1",
        state=AnalysisState.FETCHED,
        fetched_at=timezone.now(),
        summary="Asked for a refund.",
        sentiment_label="negative",
        main_topics=["refund", "billing"],
        resolution_status="resolved",
    )
    (row,) = export(admin_client, call)
    assert (row["summary"], row["sentiment"], row["topics"], row["resolution"]) == (
        "Asked for a refund.",
        "negative",
        "refund; billing",
        "resolved",
    )


@pytest.mark.parametrize("typed", ['=HYPERLINK("http://x")', "+1+2", "-2+3", "@SUM(A1)"])
def test_the_export_never_hands_a_spreadsheet_a_formula(admin_client, agent, typed):
    call = call_on(agent, origin=typed)
    (row,) = export(admin_client, call)
    assert row["origin"] == "'" + typed


def test_the_export_needs_permission_to_see_calls(client, django_user_model, agent):
    user = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(user)
    response = client.post(
        reverse("admin:webcall_widget_call_changelist"),
        {"action": "export_csv", "_selected_action": [str(call_on(agent).pk)]},
    )
    assert response.status_code == 403


def test_ended_status_is_exported_as_stored(admin_client, agent):
    call = call_on(agent, status=CallStatus.ENDED)
    assert export(admin_client, call)[0]["status"] == "ended"
