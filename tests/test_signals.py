"""The signals site code can receive: when each is sent, with what, and that a receiver
that fails never breaks a call."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator

import pytest
from django.dispatch import Signal
from django.utils import timezone

from webcall_widget.models import Call, CallStatus
from webcall_widget.relay import records
from webcall_widget.relay.records import Counters, NewMessage, Outcome
from webcall_widget.signals import call_created, call_ended, call_live, message_received


class Heard:
    """What receivers of some signals were sent, in order: (signal name, kwargs)."""

    def __init__(self, **signals: Signal) -> None:
        self.signals = signals
        self.sent: list[tuple[str, dict]] = []

    def __enter__(self) -> Heard:
        for name, signal in self.signals.items():
            signal.connect(self._receiver(name), weak=False, dispatch_uid=f"heard-{name}")
        return self

    def __exit__(self, *exc: object) -> None:
        for name, signal in self.signals.items():
            signal.disconnect(dispatch_uid=f"heard-{name}")

    def _receiver(self, name):
        def receive(sender, **kwargs):
            self.sent.append((name, kwargs))

        return receive

    def of(self, name: str) -> list[dict]:
        return [kwargs for heard, kwargs in self.sent if heard == name]


@pytest.fixture
def broken() -> Iterator[None]:
    """A receiver of every call signal that raises."""

    def fail(sender, **kwargs):
        raise RuntimeError("the site's receiver is broken")

    signals = [call_created, call_live, message_received, call_ended]
    for signal in signals:
        signal.connect(fail, weak=False, dispatch_uid="test-broken-receiver")
    yield
    for signal in signals:
        signal.disconnect(dispatch_uid="test-broken-receiver")


def create(client, slug):
    return client.post(
        f"/webcall/agents/{slug}/calls",
        data=json.dumps({"mode": "text"}),
        content_type="application/json",
    )


def a_call(agent, **fields):
    return Call.objects.create(agent=agent, mode="text", **fields)


def test_call_created_is_sent_with_the_call_the_agent_and_the_request(sandbox, agent, client):
    with Heard(call_created=call_created) as heard:
        response = create(client, agent.slug)
    (sent,) = heard.of("call_created")
    assert sent["call"] == Call.objects.get(pk=response.json()["call"])
    assert sent["call"].voicehub_call_id in sandbox.state.calls
    assert sent["agent"] == agent
    assert sent["request"].path == f"/webcall/agents/{agent.slug}/calls"


def test_call_created_is_not_sent_for_a_call_voicehub_refused(sandbox, agent, client):
    sandbox.faults.create_status = 503
    with Heard(call_created=call_created) as heard:
        assert create(client, agent.slug).status_code == 503
    assert heard.sent == []


def test_a_failing_call_created_receiver_is_logged_and_the_visitor_gets_the_call(
    sandbox, agent, client, broken, caplog
):
    assert create(client, agent.slug).status_code == 201
    (ours,) = [r for r in caplog.records if r.name == "webcall_widget.signals"]
    assert "call_created receiver" in ours.getMessage()
    assert "the site's receiver is broken" in ours.getMessage()


def test_call_live_is_sent_once_when_the_call_goes_live(agent):
    call = a_call(agent, status=CallStatus.CONNECTING)
    with Heard(call_live=call_live) as heard:
        records.mark_live(call.id)
        records.mark_live(call.id)
    (sent,) = heard.of("call_live")
    assert sent["call"].pk == call.pk and sent["call"].status == CallStatus.LIVE


def test_message_received_is_sent_for_each_final_message_in_order(agent):
    call = a_call(agent)
    messages = [
        NewMessage("user", "Hello", "m1", True),
        NewMessage("agent", "You said: Hello", "m2", True),
        NewMessage("agent", "Still typ", "m3", False),  # cut off by the end of the call
    ]
    with Heard(message_received=message_received) as heard:
        records.add_messages(call.id, messages)
    sent = heard.of("message_received")
    assert [(s["message"].role, s["message"].text, s["message"].seq) for s in sent] == [
        ("user", "Hello", 0),
        ("agent", "You said: Hello", 1),
    ]
    assert all(s["call"].pk == call.pk for s in sent)


def test_call_ended_is_sent_with_the_reason_status_and_duration(agent):
    live_at = timezone.now() - dt.timedelta(seconds=90)
    call = a_call(agent, status=CallStatus.LIVE, live_at=live_at)
    with Heard(call_ended=call_ended) as heard:
        records.finish(call.id, Outcome(CallStatus.ENDED, "visitor-ended"), Counters())
    (sent,) = heard.of("call_ended")
    assert (sent["reason"], sent["status"]) == ("visitor-ended", CallStatus.ENDED)
    assert 89 < sent["duration"] < 120
    assert sent["call"].ended_at is not None


def test_call_ended_has_no_duration_for_a_call_that_never_went_live(agent):
    call = a_call(agent, status=CallStatus.CONNECTING)
    with Heard(call_ended=call_ended) as heard:
        records.finish(call.id, Outcome(CallStatus.FAILED, "upstream-failed"), Counters())
    assert heard.of("call_ended")[0]["duration"] is None


def test_a_second_finish_of_a_call_sends_no_second_call_ended(agent):
    call = a_call(agent, status=CallStatus.LIVE, live_at=timezone.now())
    with Heard(call_ended=call_ended) as heard:
        records.finish(call.id, Outcome(CallStatus.ENDED, "visitor-ended"), Counters())
        records.finish(call.id, Outcome(CallStatus.FAILED, "relay-lost"), Counters())
    assert [s["reason"] for s in heard.of("call_ended")] == ["visitor-ended"]


def test_nothing_is_loaded_when_nobody_listens(agent, django_assert_num_queries):
    call = a_call(agent, status=CallStatus.LIVE, live_at=timezone.now())
    with django_assert_num_queries(1):
        records.finish(call.id, Outcome(CallStatus.ENDED, "visitor-ended"), Counters())


def test_failing_receivers_never_undo_or_stop_what_the_relay_records(agent, broken, caplog):
    call = a_call(agent, status=CallStatus.CONNECTING)
    records.mark_live(call.id)
    records.add_messages(call.id, [NewMessage("user", "Hi", "m1", True)])
    records.finish(call.id, Outcome(CallStatus.ENDED, "visitor-ended"), Counters())
    call.refresh_from_db()
    assert (call.status, call.end_reason, call.messages.count()) == ("ended", "visitor-ended", 1)
    failures = [r for r in caplog.records if r.name == "webcall_widget.signals"]
    assert [r.levelno for r in failures] == [logging.ERROR] * 3
    assert all(str(call.id) in r.getMessage() for r in failures)


@pytest.mark.django_db(transaction=True)
async def test_a_conversation_through_the_relay_sends_each_signal_in_order(
    sandbox, agent, async_client, open_socket
):
    from tests.relay.test_consumer import hang_up, live_call, receive_until

    with Heard(
        call_created=call_created,
        call_live=call_live,
        message_received=message_received,
        call_ended=call_ended,
    ) as heard:
        call_id, socket = await live_call(async_client, open_socket, agent)
        await socket.send_json_to({"type": "text", "text": "hello there"})
        await receive_until(
            socket, lambda f: f.get("final") and f["text"] == "You said: hello there"
        )
        await hang_up(socket)
    names = [name for name, _ in heard.sent]
    assert names[:2] == ["call_created", "call_live"]
    assert names[-1] == "call_ended"
    texts = [s["message"].text for s in heard.of("message_received")]
    assert texts[-2:] == ["hello there", "You said: hello there"]
    (ended,) = heard.of("call_ended")
    assert str(ended["call"].pk) == call_id and ended["reason"] == "visitor-ended"
    assert ended["duration"] is not None and ended["duration"] >= 0
