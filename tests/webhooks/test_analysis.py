"""Analyses: where they may come from, the fetch over real HTTP, and the background
fetch with its retries."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import uuid
from io import StringIO

import pytest
import requests
from django.core.management import call_command
from django.utils import timezone

from tests.servers import ServerThread, free_port
from tests.webhooks.conftest import SECRET, post_event, wait_for_fetches
from webcall_widget.models import AnalysisState, Call, CallAnalysis
from webcall_widget.sandbox.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY
from webcall_widget.signals import analysis_ready
from webcall_widget.webhooks.analysis import extract, fetch_analysis, resolve_analysis_url
from webcall_widget.webhooks.errors import (
    AnalysisBadResponse,
    AnalysisRefused,
    AnalysisUnavailable,
    AnalysisUrlRefused,
)
from webcall_widget.webhooks.worker import abandoned_after

PUBLIC_SHAPE = {
    "summary": "The caller asked about a refund.",
    "mainTopics": ["refund", "delivery"],
    "sentiment": {
        "score": 0.2,
        "label": "Negative",
        "positiveKeywords": ["thanks"],
        "negativeKeywords": ["late", "broken"],
    },
    "empathyScore": 0.8,
    "resolutionStatus": "Resolved",
    "userInterruptionsCount": 2,
    "userSummary": "Wants a refund.",
    "assistantSummary": "Explained the refund policy.",
    "transcriptAnalysis": [{"role": "user", "text": "hello"}],
    "recordingUrls": ["https://voicehub.example/rec/1.mp3"],
    "duration": 63.5,
}


# where an analysis may come from


@pytest.mark.parametrize(
    ("url", "upstream", "expected"),
    [
        ("https://vh.example/a/1", "https://vh.example", "https://vh.example/a/1"),
        ("https://VH.example:443/a/1", "https://vh.example", "https://VH.example:443/a/1"),
        ("/a/1", "https://vh.example", "https://vh.example/a/1"),
        ("a/1", "http://site.test/voicehub-sandbox", "http://site.test/voicehub-sandbox/a/1"),
        (
            "http://site.test/voicehub-sandbox/analysis/1",
            "http://site.test/voicehub-sandbox",
            "http://site.test/voicehub-sandbox/analysis/1",
        ),
    ],
)
def test_an_analysis_url_on_the_configured_voicehub_is_accepted(url, upstream, expected):
    assert resolve_analysis_url(url, upstream) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://site.test/webcall/agents/x/config",  # the site, outside the sandbox
        "http://site.test/voicehub-sandbox/../admin/",
        "http://site.test/voicehub-sandboxed/a/1",
        "http://site.test:8000/voicehub-sandbox/a/1",
        "https://site.test/voicehub-sandbox/a/1",
        "http://site.test/voicehub-sandbox/a 1",
        "http://sité.test/voicehub-sandbox/a/1",
        "http://site.test/voicehub-sandbox/" + "a" * 2000,
    ],
)
def test_an_analysis_url_outside_the_configured_voicehub_is_refused(url):
    with pytest.raises(AnalysisUrlRefused):
        resolve_analysis_url(url, "http://site.test/voicehub-sandbox")


# reading the result


def test_every_field_seen_in_a_public_integration_is_read():
    fields = extract(PUBLIC_SHAPE)
    assert fields.summary == "The caller asked about a refund."
    assert fields.main_topics == ["refund", "delivery"]
    assert (fields.sentiment_label, fields.sentiment_score) == ("negative", 0.2)
    assert fields.positive_keywords == ["thanks"]
    assert fields.negative_keywords == ["late", "broken"]
    assert fields.empathy_score == 0.8
    assert fields.resolution_status == "resolved"
    assert fields.user_interruptions == 2
    assert (fields.user_summary, fields.assistant_summary) == (
        "Wants a refund.",
        "Explained the refund policy.",
    )
    assert fields.recording_urls == ["https://voicehub.example/rec/1.mp3"]
    assert fields.duration_seconds == 63.5


@pytest.mark.parametrize("wrapper", ["data", "result", "analysis"])
def test_a_wrapped_result_is_unwrapped(wrapper):
    assert extract({wrapper: PUBLIC_SHAPE, "status": "ok"}).summary == PUBLIC_SHAPE["summary"]


def test_a_result_without_the_known_fields_reads_as_empty():
    fields = extract({"something": "else"})
    assert (fields.summary, fields.main_topics, fields.sentiment_score) == ("", [], None)


@pytest.mark.parametrize("raw", [None, [], "text", 3, {"summary": 3, "mainTopics": "x"}])
def test_a_result_of_another_shape_never_raises(raw):
    extract(raw)


def test_fields_of_other_types_are_read_where_they_make_sense():
    fields = extract(
        {
            "summary": ["First point.", "Second point."],
            "mainTopics": [{"topic": "billing"}, {"name": "login"}, 7],
            "sentiment": "Positive",
            "empathyScore": "0.9",
            "userInterruptionsCount": -1,
            "duration": "n/a",
        }
    )
    assert fields.summary == "First point.\nSecond point."
    assert fields.main_topics == ["billing", "login"]
    assert (fields.sentiment_label, fields.empathy_score) == ("positive", 0.9)
    assert (fields.user_interruptions, fields.duration_seconds) == (None, None)


# fetching, over real HTTP


def sandbox_analysis(sandbox, content=None):
    """A call created at the sandbox, and an analysis of it the sandbox serves: its URL."""
    created = requests.post(
        f"{sandbox.url}/calls/public/create-web-call",
        json={"type": "text"},
        headers={"x-api-access-key": SANDBOX_API_KEY, "voicehub-agent-id": SANDBOX_AGENT_ID},
        timeout=5,
    ).json()
    analysis_id = uuid.uuid4().hex
    sandbox.state.analyses[analysis_id] = {
        **(content or PUBLIC_SHAPE),
        "callId": created["callId"],
    }
    return f"{sandbox.url}/analysis/{analysis_id}", created["callId"]


def fetch(url, key=SANDBOX_API_KEY, **options):
    return fetch_analysis(
        url, api_key=key, timeout=options.get("timeout", 5), max_bytes=options.get("max", 65536)
    )


def serving(status, body=b"{}", headers=(), delay=0.0, until: threading.Event | None = None):
    """A host answering every request with ``status`` and ``body``, after ``delay`` seconds
    or, with ``until``, once that event is set."""

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await asyncio.sleep(delay)
        if until is not None:
            await asyncio.to_thread(until.wait)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), *headers],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return ServerThread(app, name="analysis-host")


def test_a_fetch_sends_the_key_and_returns_the_result(sandbox):
    url, call_id = sandbox_analysis(sandbox)
    assert fetch(url) == {**PUBLIC_SHAPE, "callId": call_id}


def test_a_key_voicehub_refuses_is_not_worth_another_try(sandbox):
    url, _ = sandbox_analysis(sandbox)
    with pytest.raises(AnalysisRefused) as refused:
        fetch(url, key="sandbox-key-no-credits")
    assert not refused.value.retryable
    assert "401" in str(refused.value)


def test_a_503_is_worth_another_try(sandbox):
    url, _ = sandbox_analysis(sandbox)
    sandbox.faults.analysis_fail_first = 1
    with pytest.raises(AnalysisUnavailable) as unavailable:
        fetch(url)
    assert unavailable.value.retryable
    assert fetch(url)["summary"] == PUBLIC_SHAPE["summary"]


def test_an_analysis_not_ready_yet_404_is_worth_another_try(sandbox):
    with pytest.raises(AnalysisUnavailable):
        fetch(f"{sandbox.url}/analysis/not-yet")


def test_a_host_that_does_not_answer_is_worth_another_try():
    with pytest.raises(AnalysisUnavailable):
        fetch(f"http://127.0.0.1:{free_port()}/analysis/1")


def test_a_redirect_is_not_followed():
    with (
        serving(302, headers=[(b"location", b"https://evil.example/")]) as host,
        pytest.raises(AnalysisBadResponse) as refused,
    ):
        fetch(host.url + "/analysis/1")
    assert "redirect" in str(refused.value) and not refused.value.retryable


def test_a_result_over_the_size_limit_is_refused():
    with (
        serving(200, body=json.dumps({"summary": "x" * 5000}).encode()) as host,
        pytest.raises(AnalysisBadResponse, match="more than 1000 bytes"),
    ):
        fetch(host.url + "/analysis/1", max=1000)


def test_a_result_that_is_not_a_json_object_is_refused():
    with (
        serving(200, body=b"[1, 2]") as host,
        pytest.raises(AnalysisBadResponse, match="not an object"),
    ):
        fetch(host.url + "/analysis/1")


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"1e999"])
def test_a_result_with_a_number_no_database_stores_is_refused(number):
    with (
        serving(200, body=b'{"summary": "s", "sentimentScore": ' + number + b"}") as host,
        pytest.raises(AnalysisBadResponse, match="not JSON"),
    ):
        fetch(host.url + "/analysis/1")


def test_a_host_that_answers_too_slowly_times_out():
    with (
        serving(200, delay=2.0) as host,
        pytest.raises(AnalysisUnavailable, match="did not answer within 0.2s"),
    ):
        fetch(host.url + "/analysis/1", timeout=0.2)


def test_a_key_that_cannot_be_sent_is_not_sent():
    with pytest.raises(AnalysisRefused, match="cannot be sent"):
        fetch("http://127.0.0.1:9/analysis/1", key="sk\u2019broken")


# in the background


@pytest.fixture
def transactional(transactional_db):
    """Fetches run in their own thread, with their own database connection: they see
    only committed rows."""


def ready_event(url, voicehub_call_id, analysis_id="an-1"):
    return {
        "eventType": "AnalysisResultReady",
        "eventId": uuid.uuid4().hex,
        "analysisId": analysis_id,
        "callId": voicehub_call_id,
        "analysisResultUrl": url,
    }


def call_at(agent, sandbox, voicehub_call_id):
    return Call.objects.create(
        agent=agent, mode="text", voicehub_call_id=voicehub_call_id, upstream_url=sandbox.url
    )


def test_an_analysis_is_fetched_in_the_background_and_stored(
    transactional, fetches, sandbox, client, hooked_agent
):
    url, vh_call = sandbox_analysis(sandbox)
    call = call_at(hooked_agent, sandbox, vh_call)
    post_event(client, hooked_agent, ready_event(url, vh_call))
    wait_for_fetches()
    analysis = CallAnalysis.objects.get()
    assert (analysis.call, analysis.state, analysis.attempts) == (call, AnalysisState.FETCHED, 1)
    assert analysis.raw == {**PUBLIC_SHAPE, "callId": vh_call}
    assert (analysis.summary, analysis.sentiment_label, analysis.resolution_status) == (
        PUBLIC_SHAPE["summary"],
        "negative",
        "resolved",
    )
    call.refresh_from_db()
    assert call.recordings == ["https://voicehub.example/rec/1.mp3"]


def test_the_webhook_is_answered_without_waiting_for_the_fetch(
    transactional, fetches, client, hooked_agent
):
    """The fetch waits for the test to let VoiceHub answer, which it does only once the
    webhook was answered (or, if the webhook waited for the fetch, after 10 s, to fail)."""
    answer = threading.Event()
    gave_up = threading.Timer(10, answer.set)
    gave_up.start()
    with serving(200, body=json.dumps(PUBLIC_SHAPE).encode(), until=answer) as slow_voicehub:
        Call.objects.create(
            agent=hooked_agent,
            mode="text",
            voicehub_call_id="vh-1",
            upstream_url=slow_voicehub.url,
        )
        response = post_event(
            client, hooked_agent, ready_event(slow_voicehub.url + "/analysis/1", "vh-1")
        )
        waited_for_the_fetch = answer.is_set()
        pending = CallAnalysis.objects.get().state
        gave_up.cancel()
        answer.set()
        assert response.status_code == 200
        assert not waited_for_the_fetch
        assert pending == AnalysisState.PENDING
        wait_for_fetches()
    assert CallAnalysis.objects.get().state == AnalysisState.FETCHED


def test_a_fetch_that_fails_first_is_tried_again(
    transactional, fetches, sandbox, client, hooked_agent
):
    url, vh_call = sandbox_analysis(sandbox)
    call_at(hooked_agent, sandbox, vh_call)
    sandbox.faults.analysis_fail_first = 2
    post_event(client, hooked_agent, ready_event(url, vh_call))
    wait_for_fetches()
    analysis = CallAnalysis.objects.get()
    assert (analysis.state, analysis.attempts, analysis.error) == (AnalysisState.FETCHED, 3, "")
    assert sandbox.state.analysis_fetches == 3


def test_a_fetch_that_keeps_failing_ends_failed_with_the_reason(
    transactional, fetches, sandbox, client, hooked_agent, settings
):
    raw = settings.WEBCALL_WIDGET
    settings.WEBCALL_WIDGET = {**raw, "WEBHOOKS": {**raw["WEBHOOKS"], "ANALYSIS_ATTEMPTS": 2}}
    url, vh_call = sandbox_analysis(sandbox)
    call_at(hooked_agent, sandbox, vh_call)
    sandbox.faults.analysis_fail_first = 5
    post_event(client, hooked_agent, ready_event(url, vh_call))
    wait_for_fetches()
    analysis = CallAnalysis.objects.get()
    assert (analysis.state, analysis.attempts) == (AnalysisState.FAILED, 2)
    assert "answered 503" in analysis.error
    assert sandbox.state.analysis_fetches == 2


def test_a_refused_key_is_not_tried_again(transactional, fetches, sandbox, client, agent_factory):
    agent = agent_factory(webhook_secret=SECRET, api_key="sandbox-key-no-credits")
    url, vh_call = sandbox_analysis(sandbox)
    call_at(agent, sandbox, vh_call)
    post_event(client, agent, ready_event(url, vh_call))
    wait_for_fetches()
    analysis = CallAnalysis.objects.get()
    assert (analysis.state, analysis.attempts) == (AnalysisState.FAILED, 1)
    assert "refused the agent's key" in analysis.error


def test_analysis_ready_hands_site_code_the_analysis(
    transactional, fetches, sandbox, client, hooked_agent
):
    heard = []
    analysis_ready.connect(
        lambda sender, **kwargs: heard.append(kwargs), weak=False, dispatch_uid="test-analysis"
    )
    try:
        url, vh_call = sandbox_analysis(sandbox)
        call = call_at(hooked_agent, sandbox, vh_call)
        post_event(client, hooked_agent, ready_event(url, vh_call))
        wait_for_fetches()
    finally:
        analysis_ready.disconnect(dispatch_uid="test-analysis")
    (sent,) = heard
    assert sent["analysis"] == CallAnalysis.objects.get()
    assert sent["analysis"].summary == PUBLIC_SHAPE["summary"]
    assert (sent["agent"], sent["call"]) == (hooked_agent, call)


def test_an_analysis_event_without_a_call_id_is_linked_by_the_results_call_id(
    transactional, fetches, sandbox, client, hooked_agent
):
    url, vh_call = sandbox_analysis(sandbox)
    call = call_at(hooked_agent, sandbox, vh_call)
    event = ready_event(url, vh_call)
    del event["callId"]
    post_event(client, hooked_agent, event)
    wait_for_fetches()
    analysis = CallAnalysis.objects.get()
    assert (analysis.call, analysis.voicehub_call_id) == (call, vh_call)


def pending_analysis(agent, url, vh_call, age_seconds, *, queued_seconds_ago=None):
    """A pending analysis that arrived ``age_seconds`` ago and was queued for its fetch
    then, or ``queued_seconds_ago`` (fetched again)."""
    analysis = CallAnalysis.objects.create(
        agent=agent, voicehub_call_id=vh_call, analysis_id=uuid.uuid4().hex, source_url=url
    )
    now = timezone.now()
    queued = age_seconds if queued_seconds_ago is None else queued_seconds_ago
    CallAnalysis.objects.filter(pk=analysis.pk).update(
        requested_at=now - dt.timedelta(seconds=age_seconds),
        queued_at=now - dt.timedelta(seconds=queued),
    )
    return analysis


def test_expire_webcalls_fetches_an_analysis_a_stopped_process_left_pending(
    sandbox, agent_factory
):
    agent = agent_factory()
    url, vh_call = sandbox_analysis(sandbox)
    call = call_at(agent, sandbox, vh_call)
    left = pending_analysis(agent, url, vh_call, abandoned_after() + 1)
    out = StringIO()
    call_command("expire_webcalls", stdout=out)
    assert "1 analyses left pending by a stopped process fetched." in out.getvalue()
    left.refresh_from_db()
    assert (left.state, left.call, left.summary) == (
        AnalysisState.FETCHED,
        call,
        PUBLIC_SHAPE["summary"],
    )


def test_expire_webcalls_leaves_an_analysis_that_may_still_be_in_a_fetch(sandbox, agent_factory):
    agent = agent_factory()
    url, vh_call = sandbox_analysis(sandbox)
    recent = pending_analysis(agent, url, vh_call, abandoned_after() - 5)
    out = StringIO()
    call_command("expire_webcalls", stdout=out)
    assert "analyses" not in out.getvalue()
    recent.refresh_from_db()
    assert (recent.state, recent.attempts) == (AnalysisState.PENDING, 0)


def test_expire_webcalls_leaves_an_old_analysis_fetched_again_lately_to_that_fetch(
    sandbox, agent_factory
):
    agent = agent_factory()
    url, vh_call = sandbox_analysis(sandbox)
    again = pending_analysis(agent, url, vh_call, 86400, queued_seconds_ago=abandoned_after() - 5)
    out = StringIO()
    call_command("expire_webcalls", stdout=out)
    assert "analyses" not in out.getvalue()
    again.refresh_from_db()
    assert (again.state, again.attempts) == (AnalysisState.PENDING, 0)


def test_expire_webcalls_tries_a_left_analysis_once_and_marks_it_failed_without_waiting(
    sandbox, agent_factory
):
    agent = agent_factory()
    url, vh_call = sandbox_analysis(sandbox)
    left = pending_analysis(agent, url, vh_call, abandoned_after() + 1)
    sandbox.faults.analysis_fail_first = 1
    call_command("expire_webcalls", stdout=StringIO())
    left.refresh_from_db()
    assert (left.state, left.attempts) == (AnalysisState.FAILED, 1)
    assert "503" in left.error
