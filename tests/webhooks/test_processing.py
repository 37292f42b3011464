"""What each stored event does to its call, and what waits for a call not known yet."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from tests.webhooks.conftest import SECRET, post_event, status_event
from webcall_widget.models import Call, CallAnalysis, WebhookEvent, WebhookEventState
from webcall_widget.webhooks import processing

pytestmark = pytest.mark.django_db


def call_of(agent, voicehub_call_id="vh-1", **fields):
    return Call.objects.create(
        agent=agent,
        mode="text",
        voicehub_call_id=voicehub_call_id,
        upstream_url="https://voicehub.example",
        **fields,
    )


def recordings_event(call_id, *paths):
    return {
        "eventType": "RecordingsAvailable",
        "eventId": uuid.uuid4().hex,
        "callId": call_id,
        "recordings": list(paths),
    }


def test_a_status_change_sets_the_calls_voicehub_status(client, hooked_agent):
    call = call_of(hooked_agent)
    post_event(client, hooked_agent, status_event("vh-1", "in-progress"))
    call.refresh_from_db()
    assert call.voicehub_status == "in-progress"
    assert call.voicehub_status_at == dt.datetime(2026, 5, 1, 10, tzinfo=dt.UTC)
    event = WebhookEvent.objects.get()
    assert (event.state, event.call) == (WebhookEventState.PROCESSED, call)


def test_a_status_change_leaves_the_relays_own_status_alone(client, hooked_agent):
    call = call_of(hooked_agent, status="live")
    post_event(client, hooked_agent, status_event("vh-1", "completed"))
    call.refresh_from_db()
    assert (call.status, call.voicehub_status, call.ended_at) == ("live", "completed", None)


def test_an_older_status_arriving_late_does_not_replace_a_newer_one(client, hooked_agent):
    call = call_of(hooked_agent)
    post_event(
        client, hooked_agent, status_event("vh-1", "completed", timestamp="2026-05-01T10:05:00Z")
    )
    post_event(
        client, hooked_agent, status_event("vh-1", "in-progress", timestamp="2026-05-01T10:01:00Z")
    )
    call.refresh_from_db()
    assert call.voicehub_status == "completed"
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {"processed"}


def test_a_status_without_a_timestamp_counts_from_its_arrival(client, hooked_agent):
    call = call_of(hooked_agent)
    post_event(client, hooked_agent, status_event("vh-1", "queued", timestamp=None))
    call.refresh_from_db()
    assert call.voicehub_status == "queued"
    assert call.voicehub_status_at == WebhookEvent.objects.get().received_at


def test_an_event_without_a_status_fails_with_the_reason(client, hooked_agent):
    call_of(hooked_agent)
    payload = status_event("vh-1", "queued")
    del payload["status"]
    post_event(client, hooked_agent, payload)
    event = WebhookEvent.objects.get()
    assert (event.state, event.error) == (WebhookEventState.FAILED, "the event has no status")


def test_an_event_without_a_call_id_fails_with_the_reason(client, hooked_agent):
    payload = status_event("vh-1", "queued")
    del payload["callId"]
    post_event(client, hooked_agent, payload)
    event = WebhookEvent.objects.get()
    assert (event.state, event.error) == (WebhookEventState.FAILED, "the event names no callId")


def test_an_event_for_a_call_not_known_yet_waits_as_unmatched(client, hooked_agent):
    post_event(client, hooked_agent, status_event("vh-later", "queued"))
    event = WebhookEvent.objects.get()
    assert (event.state, event.call) == (WebhookEventState.UNMATCHED, None)


def test_waiting_events_are_processed_when_their_call_appears(client, hooked_agent):
    post_event(client, hooked_agent, status_event("vh-later", "queued"))
    post_event(client, hooked_agent, recordings_event("vh-later", "r/1.wav"))
    call = call_of(hooked_agent, "vh-later")
    assert processing.call_appeared(call) == 2
    call.refresh_from_db()
    assert (call.voicehub_status, call.recordings) == ("queued", ["r/1.wav"])
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {"processed"}
    assert processing.call_appeared(call) == 0  # nothing is processed twice


def test_creating_a_call_processes_the_events_voicehub_sent_before(sandbox, client, hooked_agent):
    post_event(client, hooked_agent, status_event("vh-early", "queued"))
    sandbox.faults.create_body = json.dumps(
        {"callId": "vh-early", "webCallSocketPath": "/socket.io"}
    ).encode()
    response = client.post(
        f"/webcall/agents/{hooked_agent.slug}/calls",
        data=json.dumps({"mode": "text"}),
        content_type="application/json",
    )
    assert response.status_code == 201
    call = Call.objects.get()
    assert call.voicehub_status == "queued"
    assert WebhookEvent.objects.get().call == call


def test_an_event_for_another_agents_call_does_not_touch_it(client, hooked_agent, agent_factory):
    theirs = call_of(agent_factory(), "vh-1")
    post_event(client, hooked_agent, status_event("vh-1", "completed"))
    theirs.refresh_from_db()
    assert theirs.voicehub_status == ""
    assert WebhookEvent.objects.get().state == WebhookEventState.UNMATCHED


def test_recordings_are_added_to_the_call_once_each(client, hooked_agent):
    call = call_of(hooked_agent)
    post_event(client, hooked_agent, recordings_event("vh-1", "rec/a.wav", "rec/b.wav"))
    post_event(client, hooked_agent, recordings_event("vh-1", "rec/b.wav", "rec/c.wav"))
    call.refresh_from_db()
    assert call.recordings == ["rec/a.wav", "rec/b.wav", "rec/c.wav"]


def test_processing_an_event_again_changes_nothing_more(client, hooked_agent):
    call = call_of(hooked_agent)
    post_event(client, hooked_agent, recordings_event("vh-1", "rec/a.wav"))
    processing.process_again(WebhookEvent.objects.all(), upstream=None)
    call.refresh_from_db()
    assert call.recordings == ["rec/a.wav"]


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/analysis/1",
        "http://voicehub.example/analysis/1",
        "https://voicehub.example:8443/analysis/1",
        "https://voicehub.example@evil.example/analysis/1",
        "https://user:pw@voicehub.example/analysis/1",
        "//evil.example/analysis/1",
        "https://voicehub.example\\@evil.example/",
        "https://voicehub.example.evil.example/analysis/1",
        "ftp://voicehub.example/analysis/1",
        "",
        42,
    ],
)
def test_an_analysis_url_not_on_the_calls_voicehub_is_refused_and_never_fetched(
    client, hooked_agent, url
):
    call_of(hooked_agent)
    payload = {
        "eventType": "AnalysisResultReady",
        "eventId": uuid.uuid4().hex,
        "callId": "vh-1",
        "analysisId": "an-1",
        "analysisResultUrl": url,
    }
    assert post_event(client, hooked_agent, payload).status_code == 200
    event = WebhookEvent.objects.get()
    assert event.state == WebhookEventState.FAILED
    assert "analysisResultUrl" in event.error
    assert not CallAnalysis.objects.exists()


def test_an_analysis_for_a_known_call_is_stored_as_pending(client, hooked_agent):
    call = call_of(hooked_agent)
    payload = {
        "eventType": "AnalysisResultReady",
        "analysisId": "an-1",
        "callId": "vh-1",
        "analysisResultUrl": "https://voicehub.example/analysis/an-1#top",
    }
    post_event(client, hooked_agent, payload)  # in a test transaction: never fetched
    analysis = CallAnalysis.objects.get()
    assert (analysis.call, analysis.analysis_id, analysis.state) == (call, "an-1", "pending")
    assert analysis.source_url == "https://voicehub.example/analysis/an-1"
    assert WebhookEvent.objects.get().event_id == "analysis:an-1"


def test_a_relative_analysis_url_is_read_on_the_calls_voicehub(client, hooked_agent):
    call_of(hooked_agent)
    payload = {
        "eventType": "AnalysisResultReady",
        "analysisId": "an-1",
        "callId": "vh-1",
        "analysisResultUrl": "/analysis/an-1",
    }
    post_event(client, hooked_agent, payload)
    assert CallAnalysis.objects.get().source_url == "https://voicehub.example/analysis/an-1"


def test_an_analysis_for_an_unknown_call_waits_for_it_on_the_configured_voicehub(
    client, hooked_agent, settings
):
    settings.WEBCALL_WIDGET = {"UPSTREAM": {"URL": "https://voicehub.example"}}
    payload = {
        "eventType": "AnalysisResultReady",
        "analysisId": "an-1",
        "callId": "vh-later",
        "analysisResultUrl": "https://voicehub.example/analysis/an-1",
    }
    post_event(client, hooked_agent, payload)
    assert WebhookEvent.objects.get().state == WebhookEventState.UNMATCHED
    assert CallAnalysis.objects.get().call is None
    call = call_of(hooked_agent, "vh-later")
    processing.call_appeared(call)
    assert CallAnalysis.objects.get().call == call
    assert CallAnalysis.objects.count() == 1


def test_a_retry_with_a_wrong_secret_is_still_refused(client, hooked_agent):
    payload = status_event("vh-1", "queued")
    post_event(client, hooked_agent, payload)
    assert post_event(client, hooked_agent, payload, secret=SECRET + "x").status_code == 401


def analysis_event(call_id: str, url: str = "https://voicehub.example/analysis/an-1") -> dict:
    return {
        "eventType": "AnalysisResultReady",
        "analysisId": "an-1",
        "callId": call_id,
        "analysisResultUrl": url,
    }


def test_an_analysis_with_no_voicehub_to_fetch_it_from_fails_with_the_reason(
    client, hooked_agent, settings
):
    settings.WEBCALL_WIDGET = {}  # no UPSTREAM.URL, and no call to read one from
    post_event(client, hooked_agent, analysis_event("vh-unknown"))
    event = WebhookEvent.objects.get()
    assert event.state == WebhookEventState.FAILED
    assert event.error == "no VoiceHub URL is configured to fetch the analysis from"
    assert not CallAnalysis.objects.exists()


def test_an_analysis_that_failed_is_fetched_again_when_its_event_is_processed_again(
    client, hooked_agent
):
    call = call_of(hooked_agent)
    post_event(client, hooked_agent, analysis_event("vh-1"))
    CallAnalysis.objects.update(state="failed", error="503 from VoiceHub")
    processing.process_again(WebhookEvent.objects.all(), upstream=None)
    analysis = CallAnalysis.objects.get()
    assert (analysis.call, analysis.state, analysis.error) == (call, "pending", "")
    assert WebhookEvent.objects.get().state == WebhookEventState.PROCESSED


def test_an_analysis_fetched_already_is_left_alone_when_its_event_is_processed_again(
    client, hooked_agent
):
    call_of(hooked_agent)
    post_event(client, hooked_agent, analysis_event("vh-1"))
    CallAnalysis.objects.update(state="fetched")
    processing.process_again(WebhookEvent.objects.all(), upstream=None)
    assert CallAnalysis.objects.get().state == "fetched"


def test_a_call_without_a_voicehub_id_has_no_events_waiting(client, hooked_agent):
    post_event(client, hooked_agent, status_event("", "queued"))  # no callId: failed
    call = call_of(hooked_agent, voicehub_call_id="")
    assert processing.call_appeared(call) == 0
    assert WebhookEvent.objects.get().call is None
