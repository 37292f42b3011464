"""The whole path over real HTTP: the sandbox posts its call webhooks to the site, the site
stores and processes them and fetches the analysis back from the sandbox."""

from __future__ import annotations

import pytest
import requests

from tests.servers import ServerThread, post_create_call, say_and_hang_up
from tests.webhooks.conftest import SECRET, wait_for_fetches
from webcall_widget.models import AnalysisState, Call, CallAnalysis, WebhookEvent
from webcall_widget.sandbox.state import WebhookTarget
from webcall_widget.signals import webhook_received

pytestmark = pytest.mark.django_db(transaction=True)

EVERY_EVENT = 5  # queued, in-progress, completed, recordings, analysis


@pytest.fixture
def site(fetches):
    """The site on a real port, its upstream the sandbox (on its own port)."""
    from tests.asgi import application

    with ServerThread(application, name="webhook-site") as server:
        yield server


def webhooks_to(sandbox, site, agent, secret=SECRET):
    url = f"{site.url}/webcall/agents/{agent.slug}/webhook"
    sandbox.state.webhook = WebhookTarget(url, secret)


def talk(site, agent, text="I need a refund"):
    response = post_create_call(site.url, agent.slug)
    assert response.status_code == 201, response.text
    say_and_hang_up(response.json()["socket"], site.url, text)
    return Call.objects.get(pk=response.json()["call"])


def test_a_call_sends_its_statuses_recording_and_analysis_to_the_site(sandbox, site, hooked_agent):
    webhooks_to(sandbox, site, hooked_agent)
    call = talk(site, hooked_agent)
    sandbox.state.wait_for(lambda: len(sandbox.state.delivered()) == EVERY_EVENT)
    wait_for_fetches()
    call.refresh_from_db()
    assert call.voicehub_status == "completed"
    assert call.recordings == [f"recordings/{call.voicehub_call_id}.wav"]
    analysis = CallAnalysis.objects.get()
    assert (analysis.call, analysis.state) == (call, AnalysisState.FETCHED)
    assert "1 message(s)" in analysis.summary
    assert analysis.main_topics == ["need", "refund"]
    assert analysis.sentiment_label == "negative"
    assert analysis.resolution_status == "unresolved"
    assert WebhookEvent.objects.filter(state="processed").count() == EVERY_EVENT


def test_a_webhook_whose_answer_was_lost_is_posted_again_and_stored_once(
    sandbox, site, hooked_agent
):
    heard = []
    webhook_received.connect(
        lambda sender, **kwargs: heard.append(kwargs["event"].event_id),
        weak=False,
        dispatch_uid="test-lost-answer",
    )
    try:
        webhooks_to(sandbox, site, hooked_agent)
        sandbox.faults.webhook_lose_answers = 1
        talk(site, hooked_agent)
        sandbox.state.wait_for(lambda: len(sandbox.state.delivered()) == EVERY_EVENT)
        wait_for_fetches()
    finally:
        webhook_received.disconnect(dispatch_uid="test-lost-answer")
    first, retry = [d for d in sandbox.state.deliveries if d.attempt <= 2][:2]
    assert (first.event_id, first.status, first.lost) == (retry.event_id, 200, True)
    assert (retry.attempt, retry.delivered) == (2, True)
    assert WebhookEvent.objects.filter(event_id=first.event_id).count() == 1
    assert WebhookEvent.objects.count() == EVERY_EVENT
    assert sorted(heard) == sorted(set(heard)) and len(heard) == EVERY_EVENT


def test_webhooks_refused_until_the_secret_is_set_get_through_on_a_retry(sandbox, site, agent):
    webhooks_to(sandbox, site, agent)
    talk(site, agent)
    sandbox.state.wait_for(lambda: any(d.status == 401 for d in sandbox.state.deliveries))
    assert not WebhookEvent.objects.exists()
    agent.webhook_secret = SECRET  # the site owner pastes the secret VoiceHub sends
    agent.save()
    sandbox.state.wait_for(lambda: len(sandbox.state.delivered()) == EVERY_EVENT, timeout=10)
    wait_for_fetches()
    assert WebhookEvent.objects.count() == EVERY_EVENT
    assert Call.objects.get().voicehub_status == "completed"


def test_webhooks_with_a_wrong_secret_are_refused_and_nothing_is_stored(
    sandbox, site, hooked_agent
):
    webhooks_to(sandbox, site, hooked_agent, secret="whsec-not-the-right-one")
    talk(site, hooked_agent)
    attempts = 1 + len(sandbox.app.config.webhook_retry_delays)
    sandbox.state.wait_for(lambda: len(sandbox.state.deliveries) >= attempts)
    first = sandbox.state.deliveries[:attempts]
    assert [(d.event_type, d.attempt, d.status) for d in first] == [
        ("CallStatusChanged", n, 401) for n in range(1, attempts + 1)
    ]
    assert len({d.event_id for d in first}) == 1  # the same event, posted again
    assert not WebhookEvent.objects.exists()
    assert not CallAnalysis.objects.exists()
    assert Call.objects.get().voicehub_status == ""


def test_the_sandbox_posts_nothing_without_a_webhook_url(sandbox, site, hooked_agent):
    talk(site, hooked_agent)
    assert sandbox.state.deliveries == []
    assert not WebhookEvent.objects.exists()


def test_the_sandbox_serves_the_recording_it_announced(sandbox, site, hooked_agent):
    webhooks_to(sandbox, site, hooked_agent)
    call = talk(site, hooked_agent)
    sandbox.state.wait_for(lambda: sandbox.state.delivered("RecordingsAvailable"))
    wait_for_fetches()
    call.refresh_from_db()
    (path,) = call.recordings
    response = requests.get(f"{sandbox.url}/{path}", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    assert response.content.startswith(b"RIFF")


def test_the_mounted_sandbox_posts_to_a_path_on_the_site_that_created_the_call(
    settings, hooked_agent
):
    """As the demo is wired: the sandbox mounted on the site, its webhooks sent back to it."""
    settings.WEBCALL_WIDGET = {
        "SANDBOX": {
            "ENABLED": True,
            "WEBHOOK_URL": f"/webcall/agents/{hooked_agent.slug}/webhook",
            "WEBHOOK_SECRET": SECRET,
        },
        "WEBHOOKS": {"ANALYSIS_RETRY_DELAY": 0.01},
    }
    from tests.asgi import application
    from webcall_widget.sandbox.app import mounted_sandbox

    with ServerThread(application, name="demo-like-site") as site:
        call = talk(site, hooked_agent, "thanks, that was great")
        state = mounted_sandbox().state
        try:
            state.wait_for(lambda: len(state.delivered()) == EVERY_EVENT)
            wait_for_fetches()
        finally:
            state.reset()
    call.refresh_from_db()
    assert call.voicehub_status == "completed"
    assert call.upstream_url == f"{site.url}/voicehub-sandbox"
    analysis = CallAnalysis.objects.get()
    assert (analysis.sentiment_label, analysis.call) == ("positive", call)
    assert analysis.source_url.startswith(f"{site.url}/voicehub-sandbox/analysis/")
