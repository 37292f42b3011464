"""The webhook endpoint: the secret, the body's limits, storing first, retries."""

from __future__ import annotations

import logging

import pytest

from tests.webhooks.conftest import SECRET, post_event, status_event
from webcall_widget.models import WebhookEvent, WebhookEventState
from webcall_widget.signals import webhook_received


@pytest.fixture
def heard():
    """What ``webhook_received`` receivers were sent."""
    events = []

    def receiver(sender, **kwargs):
        events.append(kwargs)

    webhook_received.connect(receiver, weak=False, dispatch_uid="test-webhook-heard")
    yield events
    webhook_received.disconnect(dispatch_uid="test-webhook-heard")


def refusals(caplog):
    return [r for r in caplog.records if r.name == "webcall_widget.webhooks"]


def test_an_event_with_the_right_secret_is_stored_as_it_came(client, hooked_agent):
    payload = status_event("call-1", "queued", agentId="echo-agent", extra={"a": [1]})
    response = post_event(client, hooked_agent, payload)
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.agent, event.event_id, event.event_type) == (
        hooked_agent,
        payload["eventId"],
        "CallStatusChanged",
    )
    assert event.payload == payload
    assert event.voicehub_call_id == "call-1"
    assert event.processed_at is not None


def test_the_answer_says_what_became_of_the_event(client, hooked_agent):
    response = post_event(client, hooked_agent, status_event("nobody", "queued"))
    assert response.json() == {"status": "unmatched"}


def test_a_missing_secret_is_401_and_only_logged(client, hooked_agent, caplog):
    response = post_event(client, hooked_agent, status_event("c", "queued"), secret=None)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_secret"
    assert not WebhookEvent.objects.exists()
    (line,) = refusals(caplog)
    assert line.levelno == logging.WARNING
    assert hooked_agent.slug in line.getMessage() and "no x-webhook-secret" in line.getMessage()


def test_a_wrong_secret_is_401_and_neither_secret_is_logged(client, hooked_agent, caplog):
    wrong = "whsec-guess-9876543210"
    response = post_event(client, hooked_agent, status_event("c", "queued"), secret=wrong)
    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()
    (line,) = refusals(caplog)
    assert "wrong x-webhook-secret" in line.getMessage()
    assert wrong not in caplog.text and SECRET not in caplog.text


def test_a_secret_differing_only_in_case_is_wrong(client, hooked_agent):
    response = post_event(client, hooked_agent, status_event("c", "q"), secret=SECRET.upper())
    assert response.status_code == 401


def test_a_secret_that_is_not_ascii_is_wrong_not_an_error(client, hooked_agent):
    response = post_event(client, hooked_agent, status_event("c", "q"), secret=SECRET + "é")
    assert response.status_code == 401


def test_an_agent_without_a_secret_refuses_every_webhook(client, agent, caplog):
    response = post_event(client, agent, status_event("c", "queued"), secret="")
    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()
    assert "has no webhook secret" in refusals(caplog)[0].getMessage()


def test_another_agents_secret_is_wrong(client, hooked_agent, agent_factory):
    other = agent_factory(webhook_secret="whsec-other-agent-000000")
    assert post_event(client, other, status_event("c", "queued")).status_code == 401


def test_an_unknown_agent_is_404_and_only_logged(client, db, caplog):
    response = client.post(
        "/webcall/agents/nobody/webhook",
        data="{}",
        content_type="application/json",
        headers={"x-webhook-secret": SECRET},
    )
    assert response.status_code == 404
    assert not WebhookEvent.objects.exists()
    assert "unknown agent 'nobody'" in refusals(caplog)[0].getMessage()


def test_a_get_is_405(client, hooked_agent):
    assert client.get(f"/webcall/agents/{hooked_agent.slug}/webhook").status_code == 405


def test_a_body_over_the_limit_is_413_and_not_stored(client, hooked_agent, settings):
    settings.WEBCALL_WIDGET = {**settings.WEBCALL_WIDGET, "WEBHOOKS": {"MAX_BODY_BYTES": 1000}}
    payload = status_event("c", "queued", padding="x" * 1000)
    response = post_event(client, hooked_agent, payload)
    assert response.status_code == 413
    assert not WebhookEvent.objects.exists()


def test_a_body_that_is_not_a_json_object_is_400_and_not_stored(client, hooked_agent):
    response = post_event(client, hooked_agent, b"[1, 2, 3]")
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_a_body_with_nan_is_400_and_not_stored(client, hooked_agent):
    response = post_event(client, hooked_agent, b'{"eventId": "e-1", "score": NaN}')
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_the_secret_is_checked_before_the_body_is_read(client, hooked_agent):
    response = post_event(client, hooked_agent, b"not json", secret=None)
    assert response.status_code == 401


def test_a_retry_is_acknowledged_and_not_processed_twice(client, hooked_agent, heard):
    payload = status_event("c-1", "queued")
    first = post_event(client, hooked_agent, payload)
    again = post_event(client, hooked_agent, payload)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == {"status": "duplicate"}
    event = WebhookEvent.objects.get()
    assert len(heard) == 1 and heard[0]["event"] == event


def test_two_agents_may_receive_events_with_the_same_id(client, hooked_agent, agent_factory):
    other = agent_factory(webhook_secret="whsec-other-agent-000000")
    payload = status_event("c-1", "queued")
    post_event(client, hooked_agent, payload)
    post_event(client, other, payload, secret="whsec-other-agent-000000")
    assert WebhookEvent.objects.count() == 2


def test_an_unknown_event_type_is_stored_and_acknowledged(client, hooked_agent):
    payload = {"eventType": "CallTranscribed", "eventId": "e-9", "callId": "c-1"}
    response = post_event(client, hooked_agent, payload)
    assert response.status_code == 200
    assert response.json() == {"status": WebhookEventState.IGNORED}
    event = WebhookEvent.objects.get()
    assert (event.event_type, event.state, event.payload) == (
        "CallTranscribed",
        WebhookEventState.IGNORED,
        payload,
    )


def test_webhook_received_hands_site_code_the_event(client, hooked_agent, heard):
    payload = status_event("c-1", "queued")
    post_event(client, hooked_agent, payload)
    (sent,) = heard
    assert sent["agent"] == hooked_agent
    assert sent["event_type"] == "CallStatusChanged"
    assert sent["payload"] == payload
    assert sent["call"] is None
    assert sent["event"].state == WebhookEventState.UNMATCHED


def test_a_failing_webhook_received_receiver_is_logged_and_voicehub_still_gets_200(
    client, hooked_agent, caplog
):
    def broken(sender, **kwargs):
        raise RuntimeError("the site's receiver is broken")

    webhook_received.connect(broken, weak=False, dispatch_uid="test-broken-webhook")
    try:
        response = post_event(client, hooked_agent, status_event("c-1", "queued"))
    finally:
        webhook_received.disconnect(dispatch_uid="test-broken-webhook")
    assert response.status_code == 200
    (ours,) = [r for r in caplog.records if r.name == "webcall_widget.signals"]
    assert "webhook_received receiver" in ours.getMessage()
    assert "the site's receiver is broken" in ours.getMessage()
