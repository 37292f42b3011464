"""The signal receivers the documentation shows (docs/examples/), run through the app's own
code: calls ended as the relay ends them, analyses stored as the fetch stores them, a limit
refusing calls at the create-call endpoint; then what the receivers did (log lines, mail,
requests to a CRM served here on a real socket)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import django
import pytest
from django.core import mail
from django.dispatch import Signal
from django.utils import timezone

from docs.examples import limit_alert, signals_basics
from docs.examples.recipes import crm, email_transcript
from webcall_widget.models import Call, CallAnalysis, CallStatus
from webcall_widget.relay import records
from webcall_widget.relay.records import Counters, NewMessage, Outcome
from webcall_widget.signals import analysis_ready, call_ended, limit_reached
from webcall_widget.webhooks import worker

pytestmark = pytest.mark.django_db

# Django 6 takes addresses, and deprecates the (name, address) pairs Django 5.2 needs.
ADMINS: list[Any] = (
    ["owner@example.com"] if django.VERSION >= (6, 0) else [("Owner", "owner@example.com")]
)


@contextlib.contextmanager
def connected(*pairs: tuple[Signal, Callable[..., Any]]) -> Iterator[None]:
    """The examples' receivers, connected for one test only (their @receiver connected them
    once, at import)."""
    for signal, receiver in pairs:
        signal.connect(receiver)
    try:
        yield
    finally:
        for signal, receiver in pairs:
            signal.disconnect(receiver)


# Importing the examples connected their receivers (@receiver), for every test this process
# runs: disconnected here at once, and connected by each test that runs them.
EXAMPLES: list[tuple[Signal, Callable[..., Any]]] = [
    (call_ended, signals_basics.log_the_call),
    (analysis_ready, signals_basics.flag_unhappy_callers),
    (call_ended, email_transcript.email_the_transcript),
    (call_ended, crm.push_the_call),
    (analysis_ready, crm.add_the_analysis),
    (limit_reached, limit_alert.tell_the_owner),
]
for _signal, _receiver in EXAMPLES:
    _signal.disconnect(_receiver)


def a_finished_call(agent, said: list[tuple[str, str]], *, live_for: float = 90) -> Call:
    """A call that went live ``live_for`` seconds ago, with ``said`` in its transcript,
    ended as the relay ends a call."""
    call = Call.objects.create(
        agent=agent,
        mode="text",
        status=CallStatus.LIVE,
        live_at=timezone.now() - dt.timedelta(seconds=live_for),
    )
    messages = [NewMessage(role, text, f"m{n}", True) for n, (role, text) in enumerate(said)]
    records.add_messages(call.id, messages)
    records.finish(call.id, Outcome(CallStatus.ENDED, "visitor-ended"), Counters())
    return call


def analysed(call: Call, raw: dict[str, Any]) -> CallAnalysis:
    """An analysis of ``call`` fetched and stored as the webhook worker stores it."""
    analysis = CallAnalysis.objects.create(
        agent=call.agent,
        call=call,
        analysis_id=f"a-{call.pk}",
        source_url="https://voicehub.example/analysis/1",
    )
    worker.store(analysis.pk, raw)
    return analysis


def test_the_basic_receivers_log_the_end_and_flag_an_unhappy_caller(agent, caplog, settings):
    settings.ADMINS = ADMINS
    caplog.set_level(logging.INFO, logger=signals_basics.__name__)
    with connected(
        (call_ended, signals_basics.log_the_call),
        (analysis_ready, signals_basics.flag_unhappy_callers),
    ):
        call = a_finished_call(agent, [("user", "This is useless")])
        analysed(call, {"summary": "A happy one", "sentiment": {"label": "Positive"}})
        assert mail.outbox == []
        other = a_finished_call(agent, [("user", "Still useless")])
        analysed(other, {"summary": "Angry about billing", "sentiment": {"label": "Negative"}})
    (logged,) = [
        r.getMessage()
        for r in caplog.records
        if r.name == signals_basics.__name__ and str(call.pk) in r.getMessage()
    ]
    assert f"to {agent}: visitor-ended after" in logged
    (sent,) = mail.outbox
    assert sent.to == ["owner@example.com"]
    assert f"An unhappy caller of {agent}" in sent.subject
    assert sent.body == "Angry about billing"


def test_the_transcript_is_emailed_when_a_call_ends(agent, settings):
    settings.WEBCALL_TRANSCRIPTS_TO = ["support@example.com"]
    with connected((call_ended, email_transcript.email_the_transcript)):
        a_finished_call(agent, [("user", "Hello"), ("agent", "You said: Hello")], live_for=90)
        email_transcript.mailer.submit(lambda: None).result(timeout=10)  # what was queued
    (sent,) = mail.outbox
    assert sent.to == ["support@example.com"]
    assert sent.subject == f"Conversation with {agent} (1.5 min, visitor-ended)"
    assert sent.body.splitlines() == ["Visitor: Hello", "", "Agent: You said: Hello"]


def test_a_call_where_nothing_was_said_sends_no_transcript(agent, settings):
    settings.WEBCALL_TRANSCRIPTS_TO = ["support@example.com"]
    with connected((call_ended, email_transcript.email_the_transcript)):
        a_finished_call(agent, [])
        email_transcript.mailer.submit(lambda: None).result(timeout=10)
    assert mail.outbox == []


class FakeCRM(BaseHTTPRequestHandler):
    """A CRM's API on a real socket: it records each request and answers 201 or 200."""

    received: list[dict[str, Any]]

    def _record(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(
            {
                "method": self.command,
                "path": self.path,
                "authorization": self.headers["Authorization"],
                "json": json.loads(body),
            }
        )
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PATCH = _record

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def crm_server(settings) -> Iterator[list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []
    handler = type("Handler", (FakeCRM,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.CRM_URL = f"http://127.0.0.1:{server.server_address[1]}/api"
    settings.CRM_TOKEN = "crm-token"
    yield received
    server.shutdown()
    server.server_close()


def test_a_finished_call_and_then_its_analysis_reach_the_crm(agent, crm_server):
    with connected((call_ended, crm.push_the_call), (analysis_ready, crm.add_the_analysis)):
        call = a_finished_call(agent, [("user", "I want a refund"), ("agent", "Done.")])
        analysed(
            call,
            {
                "summary": "Refund granted",
                "sentiment": {"label": "positive"},
                "resolutionStatus": "Resolved",
                "mainTopics": ["refund"],
            },
        )
        crm.crm.submit(lambda: None).result(timeout=10)
    created, updated = crm_server
    assert (created["method"], created["path"]) == ("POST", "/api/calls")
    assert created["authorization"] == "Bearer crm-token"
    record = created["json"]
    assert (record["id"], record["agent"], record["outcome"]) == (
        str(call.pk),
        agent.slug,
        "visitor-ended",
    )
    assert record["transcript"] == [
        {"role": "user", "text": "I want a refund"},
        {"role": "agent", "text": "Done."},
    ]
    assert 89 < record["seconds"] < 120
    assert (updated["method"], updated["path"]) == ("PATCH", f"/api/calls/{call.pk}")
    assert updated["json"] == {
        "summary": "Refund granted",
        "sentiment": "positive",
        "resolution": "resolved",
        "topics": ["refund"],
    }


def test_a_crm_that_refuses_is_logged_and_nothing_breaks(agent, settings, caplog):
    settings.CRM_URL = "http://127.0.0.1:9/api"  # nothing listens on the discard port
    settings.CRM_TOKEN = "crm-token"
    with connected((call_ended, crm.push_the_call)):
        call = a_finished_call(agent, [("user", "Hello")])
        crm.crm.submit(lambda: None).result(timeout=30)
    (refused,) = [r for r in caplog.records if r.name == crm.__name__]
    assert "The CRM refused POST /calls" in refused.getMessage()
    assert Call.objects.get(pk=call.pk).status == CallStatus.ENDED


def test_the_owner_is_told_once_when_an_agent_starts_refusing_calls(
    sandbox, agent_factory, client, settings
):
    settings.ADMINS = ADMINS
    agent = agent_factory(max_concurrent_calls=1)
    with connected((limit_reached, limit_alert.tell_the_owner)):
        statuses = [
            client.post(
                f"/webcall/agents/{agent.slug}/calls",
                data=json.dumps({"mode": "text"}),
                content_type="application/json",
                REMOTE_ADDR=f"198.51.100.{n}",
            ).status_code
            for n in range(1, 4)
        ]
    assert statuses == [201, 429, 429]
    (sent,) = mail.outbox
    assert sent.subject.endswith(f"{agent} reached a limit")
    assert sent.body == "concurrent (agent_busy) "
