"""The bridge at its edges, on fakes and virtual time (as tests/relay/test_bridge.py): a
refused rejoin, failures it did not expect, frames before the join, sockets that no
longer hold the call, a replay cut short, and a call another process took meanwhile."""

from __future__ import annotations

import asyncio
import logging

from tests.polling import until
from tests.relay.fakes import Broken, FakeBrowser
from tests.relay.test_bridge import Live, agent_says
from tests.relay.virtual_time import run
from webcall_widget.models import CallStatus
from webcall_widget.relay import protocol
from webcall_widget.relay.call import MAX_EARLY_FRAMES
from webcall_widget.relay.protocol import CloseCode
from webcall_widget.voicehub.events import AudioClear, CallEnded, UpstreamError

# failures


def test_a_call_taken_over_where_voicehub_refuses_rejoins_ends_as_lost(no_rejoin):
    async def scenario() -> None:
        live = await Live(adopting=True).start(until_ready=False)
        await live.ended()
        assert live.browser.of_type("error")[0]["code"] == "resume_failed"
        assert live.browser.of_type("ended")[0]["reason"] == "relay-lost"
        assert live.browser.closed_with == CloseCode.NORMAL
        assert (live.recorder.ended[0].status, live.recorder.ended[0].reason) == (
            CallStatus.FAILED,
            "relay-lost",
        )
        assert live.upstream.sent == []  # no socket was opened to be refused

    run(scenario())


def test_an_unexpected_failure_reading_upstream_ends_the_call_as_a_relay_error(caplog):
    async def scenario() -> None:
        live = await Live().start()
        live.upstream.push(Broken("a bug in the session"))
        await live.ended()
        assert live.browser.of_type("error")[0]["code"] == "relay_error"
        assert live.browser.closed_with == CloseCode.UPSTREAM_FAILED
        assert live.recorder.ended[0].reason == "relay-error"

    with caplog.at_level(logging.ERROR, "webcall_widget.relay"):
        run(scenario())
    assert "the relay failed unexpectedly" in caplog.text


def test_a_frame_that_breaks_the_relay_ends_the_call_as_a_relay_error(caplog):
    async def scenario() -> None:
        live = await Live().start()
        live.upstream.fail_send = Broken("a bug on the way up")
        await live.bridge.take(live.browser, protocol.Text("hello"))
        assert live.browser.of_type("ended")[0]["reason"] == "relay-error"
        assert live.browser.closed_with == CloseCode.UPSTREAM_FAILED
        assert live.recorder.ended[0].status == CallStatus.FAILED

    with caplog.at_level(logging.ERROR, "webcall_widget.relay"):
        run(scenario())
    assert "a browser frame broke the relay" in caplog.text


def test_text_for_an_upstream_socket_that_closed_is_dropped_and_the_call_goes_on(caplog):
    async def scenario() -> None:
        live = await Live().start()
        live.upstream.closed = True  # the pump has not seen it yet
        await live.type("lost on the way")
        assert not live.bridge.over()
        assert not any(sent == ("text", "lost on the way") for sent in live.upstream.sent)
        assert live.browser.of_type("message") == []  # not shown as sent either
        live.upstream.push(CallEnded("upstream-closed"))
        await live.ended()

    with caplog.at_level(logging.INFO, "webcall_widget.relay"):
        run(scenario())
    assert "dropped a frame, the upstream socket is closed" in caplog.text


# before the join


def test_what_voicehub_says_before_it_confirms_the_join_follows_ready():
    async def scenario() -> None:
        live = Live()
        live.upstream.push(agent_says("Hello early", "e1"))  # before the Joined the join sends
        await live.start()
        await until(lambda: bool(live.browser.of_type("message")))
        assert [f["type"] for f in live.browser.frames] == ["ready", "message"]
        assert live.browser.frames[1]["text"] == "Hello early"
        await live.bridge.end("visitor-ended")

    run(scenario())


def test_frames_past_the_early_queue_are_refused_and_the_rest_reach_the_agent_once_joined():
    async def scenario() -> None:
        live = Live()
        live.upstream.join_held = asyncio.Event()
        await live.start(until_ready=False)
        for n in range(MAX_EARLY_FRAMES + 1):
            await live.bridge.take(live.browser, protocol.Text(f"early {n}"))
        assert [f["code"] for f in live.browser.of_type("error")] == ["not_ready"]
        live.upstream.join_held.set()
        await until(lambda: len([s for s in live.upstream.sent if s[0] == "text"]) >= 250)
        texts = [text for kind, text in live.upstream.sent if kind == "text"]
        assert texts == [f"early {n}" for n in range(MAX_EARLY_FRAMES)]
        await live.bridge.end("visitor-ended")

    run(scenario())


# sockets that no longer hold the call


def test_a_socket_taken_over_can_neither_speak_nor_end_the_call():
    async def scenario() -> None:
        live = await Live(resume_seconds=20).start()
        old = live.browser
        back = await live.come_back()
        await live.bridge.take(old, protocol.Text("from the old tab"))
        malformed = protocol.ProtocolError("malformed_frame", "", CloseCode.MALFORMED_FRAME)
        await live.bridge.refuse(old, malformed)
        assert not any(sent == ("text", "from the old tab") for sent in live.upstream.sent)
        assert not live.bridge.over() and back.closed_with is None
        assert old.of_type("error")[-1]["code"] == "taken_over"  # nothing after that
        await live.bridge.end("visitor-ended")

    run(scenario())


def test_audio_a_socket_taken_over_dropped_is_counted_without_a_notice():
    async def scenario() -> None:
        live = await Live(resume_seconds=20).start()
        old = live.browser
        await live.come_back()
        assert live.bridge.dropped_audio(old, 640) is None
        await live.bridge.end("visitor-ended")
        assert live.recorder.counters[0].audio_bytes_dropped_out == 640

    run(scenario())


def test_an_interruption_or_an_upstream_error_while_the_visitor_is_away_is_not_replayed():
    async def scenario() -> None:
        live = await Live(resume_seconds=20).start()
        await live.drop()
        live.upstream.push(AudioClear())
        live.upstream.push(UpstreamError("a hiccup"))
        live.upstream.push(agent_says("still here", "a1"))
        await until(lambda: live.bridge.transcript.held_total == 1)
        back = await live.come_back()
        assert [f["type"] for f in back.frames] == ["ready", "transcript"]
        assert [m["text"] for m in back.frames[1]["messages"]] == ["still here"]
        assert not live.bridge.over()
        await live.bridge.end("visitor-ended")

    run(scenario())


# the replay


class GatedBrowser(FakeBrowser):
    """A socket whose transcript frame takes until the test opens ``gate`` to send."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.sending = asyncio.Event()

    async def send_text(self, frame: str) -> None:
        if '"transcript"' in frame:
            self.sending.set()
            await self.gate.wait()
        await super().send_text(frame)


def test_messages_that_come_while_the_transcript_is_sent_follow_it_in_order():
    async def scenario() -> None:
        live = await Live(resume_seconds=20).start()
        await live.drop()
        back = GatedBrowser()
        attaching = asyncio.create_task(live.bridge.attach(back, live.grant))
        await back.sending.wait()
        for n in range(3):
            live.upstream.push(agent_says(f"meanwhile {n}", f"m{n}"))
        await until(lambda: live.bridge.transcript.held_total == 3)
        back.gate.set()
        assert await attaching
        assert [f["type"] for f in back.frames] == ["ready", "transcript"] + ["message"] * 3
        assert [f["text"] for f in back.frames[2:]] == [f"meanwhile {n}" for n in range(3)]
        await live.bridge.end("visitor-ended")

    run(scenario())


def test_a_socket_that_closes_while_it_gets_the_replay_leaves_the_call_waiting():
    async def scenario() -> None:
        live = await Live(resume_seconds=20, idle_seconds=600).start()
        await live.drop()
        live.recorder.read_seconds = 2.0  # a slow database
        back = FakeBrowser()
        attaching = asyncio.create_task(live.bridge.attach(back, live.grant))
        await asyncio.sleep(1)
        await live.bridge.visitor_gone(back)
        assert await attaching
        assert live.bridge.suspended
        await asyncio.sleep(25)  # past the grace period
        assert live.recorder.ended[0].reason == "visitor-disconnected"

    run(scenario())


def test_a_call_that_ends_while_the_replay_is_read_is_shown_ended_to_the_returning_socket():
    async def scenario() -> None:
        live = await Live(resume_seconds=20).start()
        await live.drop()
        live.recorder.read_seconds = 2.0
        back = FakeBrowser()
        attaching = asyncio.create_task(live.bridge.attach(back, live.grant))
        await asyncio.sleep(1)
        live.upstream.push(CallEnded("agent-ended"))
        await attaching
        assert back.of_type("ready") == []
        assert back.of_type("ended")[0]["reason"] == "agent-ended"
        assert back.closed_with == CloseCode.NORMAL

    run(scenario())


# another process took the call


def test_a_call_another_process_took_over_meanwhile_is_let_go_rather_than_ended():
    async def scenario() -> None:
        live = await Live(owner="host:1:this").start()
        live.recorder.owner = "host:2:other"  # this process was taken for gone
        await live.bridge.handle(protocol.End())
        assert live.recorder.ended == []
        assert live.browser.closed_with == CloseCode.MOVING
        assert live.upstream.aborted
        assert not any(sent[0] == "leave" for sent in live.upstream.sent)

    run(scenario())


def test_a_call_whose_owner_cannot_be_read_is_ended_here(caplog):
    async def scenario() -> None:
        live = await Live(owner="host:1:this").start()
        live.recorder.fail["owner_of"] = 1
        await live.bridge.handle(protocol.End())
        assert live.recorder.ended[0].reason == "visitor-ended"
        assert live.browser.closed_with == CloseCode.NORMAL

    with caplog.at_level(logging.ERROR, "webcall_widget.relay"):
        run(scenario())
    assert "could not read who holds it; ending it" in caplog.text
