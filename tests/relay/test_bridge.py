"""The bridge on its own: fake browser, upstream and recorder, on a loop whose clock leaps
(tests/relay/virtual_time.py), so that limits of minutes are tested exactly in
milliseconds. The consumer and socket tests (test_consumer.py, test_limits_and_faults.py)
cover the same behaviours over real sockets."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from tests.polling import until
from tests.relay.fakes import FakeBrowser, FakeRecorder, FakeUpstream, make_call
from tests.relay.virtual_time import run
from webcall_widget.conf import get_settings
from webcall_widget.models import CallStatus
from webcall_widget.relay import late, lifecycle, protocol, tokens
from webcall_widget.relay.bridge import Bridge
from webcall_widget.relay.drops import NOTICE_SECONDS as SLOW_NOTICE_SECONDS
from webcall_widget.relay.protocol import CloseCode
from webcall_widget.relay.records import REASON_LENGTH, NewMessage
from webcall_widget.relay.transcript import MAX_HELD_MESSAGES
from webcall_widget.strings import visitor_message
from webcall_widget.voicehub.events import Audio, CallEnded, Message, Role

ORIGIN = "https://shop.example"


class Live:
    """A started bridge and its fakes."""

    def __init__(self, *, mailbox: Any = None, adopting: bool = False, **call_fields: Any) -> None:
        self.browser = FakeBrowser()
        self.upstream = FakeUpstream()
        self.mailbox = mailbox
        self.adopting = adopting
        self.recorder = FakeRecorder()
        self.call = make_call(**call_fields)
        self.grant = tokens.Grant(self.call.call_id, ORIGIN, 0)

    async def start(self, *, until_ready: bool = True) -> Live:
        async def open_upstream(**kwargs: Any) -> FakeUpstream:
            return self.upstream

        self.bridge = Bridge(
            self.call,
            self.browser,
            get_settings(),
            open_upstream=open_upstream,  # type: ignore[arg-type]
            recorder=self.recorder,
            grant=self.grant,
            mailbox=self.mailbox,
            adopting=self.adopting,
        )
        self.loop = asyncio.get_running_loop()
        self.started = self.loop.time()
        self.bridge.start()
        if until_ready:
            await until(lambda: bool(self.browser.of_type("ready")))
        return self

    async def ended(self) -> float:
        """Wait for the browser's socket to close; the seconds since the call started."""
        await asyncio.wait_for(self.browser.closed.wait(), timeout=24 * 3600)
        return self.loop.time() - self.started

    async def type(self, text: str, message_id: str | None = None) -> None:
        await self.bridge.handle(protocol.Text(text, message_id))

    async def drop(self) -> None:
        """The visitor's socket closes without an end."""
        await self.bridge.visitor_gone(self.browser)

    async def come_back(self) -> FakeBrowser:
        """A new socket resumes the call (its token already claimed)."""
        browser = FakeBrowser()
        self.grant = tokens.Grant(self.call.call_id, ORIGIN, self.grant.resumes + 1)
        assert await self.bridge.attach(browser, self.grant)
        return browser


def agent_says(text: str, message_id: str = "a1", *, final: bool = True) -> Message:
    return Message(message_id, Role.AGENT, text, final)


# deadlines


def test_a_call_nobody_talks_in_ends_after_exactly_the_idle_time():
    async def scenario() -> None:
        live = await Live(idle_seconds=120).start()
        assert await live.ended() == pytest.approx(120, abs=0.1)
        assert live.browser.closed_with == CloseCode.TIMEOUT
        assert live.browser.of_type("error")[0]["code"] == "timeout"
        assert live.browser.of_type("ended")[0]["reason"] == "idle-timeout"
        assert live.recorder.ended[0].reason == "idle-timeout"
        assert ("leave", ("text",)) in live.upstream.sent

    run(scenario())


def test_messages_keep_a_call_from_going_idle():
    async def scenario() -> None:
        live = await Live(idle_seconds=60).start()
        for _ in range(5):
            await asyncio.sleep(50)
            await live.type("still here")
        assert await live.ended() == pytest.approx(250 + 60, abs=0.1)

    run(scenario())


def test_a_busy_call_ends_at_its_longest_duration():
    async def scenario() -> None:
        live = await Live(idle_seconds=60, max_call_seconds=300).start()

        async def chatter() -> None:
            while True:
                await asyncio.sleep(20)
                live.upstream.push(agent_says("talking", f"m{live.loop.time()}"))

        talker = asyncio.create_task(chatter())
        assert await live.ended() == pytest.approx(300, abs=0.1)
        talker.cancel()
        assert live.recorder.ended[0].reason == "max-duration"

    run(scenario())


def test_a_spent_budget_ends_a_live_call_with_a_clear_message():
    async def scenario() -> None:
        live = Live(idle_seconds=600)
        live.recorder.budget_spent_at = 42.0
        await live.start()
        assert await live.ended() == pytest.approx(42, abs=0.1)
        assert live.recorder.ended[0].reason == "budget-exhausted"
        assert live.browser.of_type("error")[0]["code"] == "budget_exhausted"
        assert live.browser.closed_with == CloseCode.TIMEOUT

    run(scenario())


def test_a_budget_that_cannot_be_read_does_not_end_the_call(caplog):
    async def scenario() -> None:
        live = Live(idle_seconds=100)
        live.recorder.fail["budget_seconds_left"] = -1
        await live.start()
        assert await live.ended() == pytest.approx(100, abs=0.1)
        assert live.recorder.ended[0].reason == "idle-timeout"

    with caplog.at_level(logging.ERROR, "webcall_widget.relay"):
        run(scenario())
    assert "could not read the agent's budget" in caplog.text


# what is shown and stored


def test_the_upstream_repeating_a_typed_message_is_not_shown_twice():
    async def scenario() -> None:
        live = await Live().start()
        await live.type("hello")
        live.upstream.push(Message("u1", Role.USER, "hello", True))
        live.upstream.push(agent_says("hi there"))
        await until(lambda: len(live.browser.of_type("message")) == 2)
        await live.bridge.end("visitor-ended")
        shown = [(f["role"], f["text"]) for f in live.browser.of_type("message")]
        assert shown == [("user", "hello"), ("agent", "hi there")]
        assert [m.text for m in live.recorder.messages] == ["hello", "hi there"]

    run(scenario())


def test_a_partial_reply_cut_off_by_the_end_is_stored_as_not_final():
    async def scenario() -> None:
        live = await Live().start()
        live.upstream.push(agent_says("Once upon", "a1", final=False))
        live.upstream.push(agent_says("Once upon a time", "a1", final=False))
        await until(lambda: len(live.browser.of_type("message")) == 2)
        await live.bridge.end("visitor-ended")
        assert [(m.text, m.final) for m in live.recorder.messages] == [("Once upon a time", False)]

    run(scenario())


def test_an_overlong_end_reason_from_upstream_is_cut_to_its_column():
    async def scenario() -> None:
        live = await Live().start()
        live.upstream.push(CallEnded("the agent decided that this conversation is over " * 2))
        await live.ended()
        stored = live.recorder.ended[0].reason
        assert len(stored) == REASON_LENGTH
        assert stored.startswith("the agent decided")
        assert live.browser.of_type("ended")[0]["reason"] == stored

    run(scenario())


# every step of the end runs, whatever failed before it


def test_a_transcript_write_that_fails_is_retried_and_keeps_the_order(caplog):
    async def scenario() -> None:
        live = await Live().start()
        live.recorder.fail["add_messages"] = 2
        for n in range(3):
            await live.type(f"message {n}")
            await asyncio.sleep(0.2)
        await asyncio.sleep(5)
        assert [m.text for m in live.recorder.messages] == [f"message {n}" for n in range(3)]
        await live.bridge.end("visitor-ended")
        assert live.recorder.ended[0].reason == "visitor-ended"

    with caplog.at_level(logging.WARNING, "webcall_widget.relay"):
        run(scenario())
    assert caplog.text.count("writing 1 transcript message(s) failed") == 1


def test_a_transcript_that_cannot_be_written_still_ends_the_call(caplog):
    async def scenario() -> None:
        live = await Live().start()
        live.recorder.fail["add_messages"] = -1
        await live.type("this will not be stored")
        await live.bridge.handle(protocol.End())
        assert live.browser.closed_with == CloseCode.NORMAL
        assert live.browser.of_type("ended")[0]["reason"] == "visitor-ended"
        assert live.recorder.ended[0].status == CallStatus.ENDED

    with caplog.at_level(logging.ERROR, "webcall_widget.relay"):
        run(scenario())
    assert "could not write the transcript" in caplog.text
    assert "1 transcript message(s) were not written" in caplog.text


def test_a_call_that_ends_while_the_database_is_down_is_written_once_it_answers(caplog):
    """The visitor hangs up while the database restarts: they are told at once, and the
    rest of the transcript, then the end, are written once the database answers (both were
    lost, and the call's row stayed open, holding its agent's line)."""

    async def scenario() -> None:
        live = await Live().start()
        await live.type("said while the database restarts")
        live.recorder.fail.update(add_messages=-1, finish=-1)
        await live.type("and one more")
        await live.bridge.handle(protocol.End())
        assert live.browser.of_type("ended")[0]["reason"] == "visitor-ended"
        await asyncio.sleep(20)
        assert live.recorder.ended == [] and late.pending() == 1
        live.recorder.fail.clear()  # the database is back
        await asyncio.sleep(5)
        texts = [m.text for m in live.recorder.messages]
        assert texts == ["said while the database restarts", "and one more"]
        assert [o.reason for o in live.recorder.ended] == ["visitor-ended"]
        assert late.pending() == 0

    with caplog.at_level(logging.INFO, "webcall_widget.relay"):
        run(scenario())
    assert "its end is written once it does" in caplog.text
    assert "its end is written; the database answers again" in caplog.text


def test_the_end_of_a_call_the_database_never_takes_is_given_up_and_logged(caplog):
    async def scenario() -> None:
        live = await Live().start()
        live.recorder.fail.update(add_messages=-1, finish=-1)
        await live.type("never stored")
        await live.bridge.handle(protocol.End())
        await asyncio.sleep(late.LATE_WRITE_SECONDS + 10)
        assert late.pending() == 0
        assert live.recorder.ended == []

    with caplog.at_level(logging.ERROR, "webcall_widget.relay"):
        run(scenario())
    assert "the rest of its transcript or its end is lost" in caplog.text


def test_a_failing_upstream_close_drops_the_socket_and_still_ends_the_call():
    async def scenario() -> None:
        live = await Live().start()
        live.upstream.fail_close = True
        await live.bridge.end("visitor-ended")
        assert live.upstream.aborted
        assert live.recorder.ended[0].reason == "visitor-ended"
        assert live.browser.closed_with == CloseCode.NORMAL

    run(scenario())


def test_recording_the_end_is_tried_again_after_a_failure_without_keeping_the_visitor():
    async def scenario() -> None:
        live = await Live().start()
        live.recorder.fail["finish"] = 1
        await live.bridge.end("visitor-ended")
        assert live.browser.of_type("ended") and live.recorder.ended == []
        await asyncio.sleep(late.RETRY_SECONDS[0] + 0.1)
        assert [o.reason for o in live.recorder.ended] == ["visitor-ended"]

    run(scenario())


def test_a_browser_that_cannot_be_written_to_is_still_closed():
    async def scenario() -> None:
        live = await Live().start()

        async def broken(frame: str) -> None:
            raise ConnectionResetError("gone")

        live.browser.send_text = broken  # type: ignore[method-assign]
        await live.bridge.end("visitor-ended")
        assert live.browser.closed_with == CloseCode.NORMAL
        assert live.recorder.ended[0].reason == "visitor-ended"

    run(scenario())


def test_a_server_stop_tells_the_browser_the_assistant_is_restarting(no_rejoin):
    async def scenario() -> None:
        live = await Live().start()
        await live.bridge.server_stopping()
        assert live.browser.closed_with == CloseCode.RESTARTING
        assert live.browser.of_type("error")[0]["code"] == "relay_stopped"
        assert live.browser.of_type("ended")[0]["reason"] == "relay-stopped"
        assert live.recorder.ended[0].reason == "relay-stopped"
        assert ("leave", ("text",)) in live.upstream.sent

    run(scenario())


def test_where_voicehub_allows_rejoining_a_server_stop_lets_the_call_go():
    """Another process (or this one, restarted) takes it over when the visitor is back."""

    async def scenario() -> None:
        live = await Live().start()
        await live.type("said before the stop")
        await live.bridge.server_stopping()
        assert live.browser.closed_with == CloseCode.MOVING
        assert live.browser.of_type("ended") == []
        assert live.recorder.ended == []  # still live: not ended here
        assert [m.text for m in live.recorder.messages] == ["said before the stop"]
        assert not any(sent[0] == "leave" for sent in live.upstream.sent)
        assert live.upstream.aborted
        assert lifecycle.registry.find(live.call.call_id) is None

    run(scenario())


def test_an_event_loop_shutting_down_lets_a_call_go_where_voicehub_allows_rejoining():
    async def scenario() -> None:
        live = await Live(resume_seconds=20).start()
        await live.drop()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        assert live.recorder.ended == []
        assert not any(sent[0] == "leave" for sent in live.upstream.sent)

    run(scenario())


# a call outlives its socket for a grace period


def test_ready_gives_the_browser_a_resume_token_bound_to_the_call_and_origin():
    async def scenario() -> None:
        live = await Live(resume_seconds=20).start()
        ready = live.browser.of_type("ready")[0]
        assert ready["resume"]["seconds"] == 20
        assert ready["resumed"] is False
        grant = tokens.read_resume(ready["resume"]["token"])
        assert grant == tokens.Grant(live.call.call_id, ORIGIN, 0)
        await live.bridge.end("visitor-ended")

    run(scenario())


def test_without_a_grace_period_a_dropped_socket_ends_the_call_at_once():
    async def scenario() -> None:
        live = await Live(resume_seconds=0).start()
        assert live.browser.of_type("ready")[0]["resume"] is None
        await live.drop()
        assert [o.reason for o in live.recorder.ended] == ["visitor-disconnected"]
        assert live.browser.closed_with is None  # nobody to tell

    run(scenario())


def test_a_dropped_socket_leaves_the_call_waiting_then_it_ends_after_the_grace_period():
    async def scenario() -> None:
        live = await Live(resume_seconds=20, idle_seconds=600).start()
        await asyncio.sleep(5)
        await live.drop()
        await asyncio.sleep(19.9)
        assert live.recorder.ended == [] and live.bridge.suspended
        await until(lambda: bool(live.recorder.ended), seconds=1)
        assert live.loop.time() - live.started == pytest.approx(25, abs=0.1)
        assert live.recorder.ended[0].reason == "visitor-disconnected"
        counters = live.recorder.counters[0]
        assert counters.suspensions == 1
        assert counters.suspended_seconds == pytest.approx(20, abs=0.1)
        assert ("leave", ("text",)) in live.upstream.sent
        assert lifecycle.registry.find(live.call.call_id) is None

    run(scenario())


def test_a_resumed_call_replays_the_conversation_and_goes_on():
    async def scenario() -> None:
        live = await Live(resume_seconds=20).start()
        live.upstream.push(agent_says("Hello!", "a1"))
        await until(lambda: len(live.browser.of_type("message")) == 1)
        await live.type("where is my order?", "w1")
        await until(lambda: len(live.browser.of_type("message")) == 2)
        await live.drop()
        live.upstream.push(agent_says("It ships today.", "a2"))
        live.upstream.push(agent_says("Anything else", "a3", final=False))
        await asyncio.sleep(3)
        back = await live.come_back()
        ready, transcript = back.frames[0], back.frames[1]
        assert (ready["type"], ready["resumed"]) == ("ready", True)
        assert tokens.read_resume(ready["resume"]["token"]).resumes == 1
        assert transcript["type"] == "transcript"
        assert [(m["id"], m["text"], m["final"]) for m in transcript["messages"]] == [
            ("a1", "Hello!", True),
            ("w1", "where is my order?", True),
            ("a2", "It ships today.", True),
            ("a3", "Anything else", False),
        ]
        await live.type("no, thanks", "w2")
        assert back.frames[-1]["id"] == "w2"
        assert ("text", "no, thanks") in live.upstream.sent
        assert len(live.browser.of_type("message")) == 2  # the old socket got nothing more
        await live.bridge.end("visitor-ended")
        counters = live.recorder.counters[0]
        assert counters.suspensions == 1
        assert counters.suspended_seconds == pytest.approx(3)
        assert back.closed_with == CloseCode.NORMAL

    run(scenario())


def test_messages_that_come_while_the_replay_is_read_are_not_lost():
    async def scenario() -> None:
        live = await Live(resume_seconds=20).start()
        await live.drop()
        live.recorder.read_seconds = 2.0  # a slow database

        async def agent_talks_meanwhile() -> None:
            for n in range(5):
                await asyncio.sleep(0.5)
                live.upstream.push(agent_says(f"part {n}", f"p{n}"))

        talking = asyncio.create_task(agent_talks_meanwhile())
        back = await live.come_back()  # takes 2 s, while the agent talks
        await talking

        def shown() -> list[str]:
            replayed = [m["id"] for m in back.of_type("transcript")[0]["messages"]]
            return list(dict.fromkeys(replayed + [f["id"] for f in back.of_type("message")]))

        await until(lambda: len(shown()) == 5)
        assert shown() == [f"p{n}" for n in range(5)]
        await live.bridge.end("visitor-ended")

    run(scenario())


def test_what_is_kept_while_the_visitor_is_away_is_bounded():
    async def scenario() -> None:
        live = await Live(resume_seconds=60, idle_seconds=600).start()
        await live.drop()
        for n in range(MAX_HELD_MESSAGES + 50):
            live.upstream.push(agent_says(f"message {n}", f"m{n}"))
        await until(lambda: live.bridge.transcript.held_total == MAX_HELD_MESSAGES + 50)
        assert live.bridge.transcript.held_count() == MAX_HELD_MESSAGES
        live.recorder.fail["load_transcript"] = 1  # the replay has only what was kept
        back = await live.come_back()
        replayed = back.of_type("transcript")[0]["messages"]
        assert len(replayed) == MAX_HELD_MESSAGES
        assert replayed[-1]["text"] == f"message {MAX_HELD_MESSAGES + 49}"
        await live.bridge.end("visitor-ended")

    run(scenario())


def test_the_replay_comes_from_the_stored_transcript_when_nothing_was_kept():
    async def scenario() -> None:
        live = await Live(resume_seconds=60, idle_seconds=600).start()
        await live.drop()
        for n in range(MAX_HELD_MESSAGES + 50):
            live.upstream.push(agent_says(f"message {n}", f"m{n}"))
        await until(lambda: len(live.recorder.messages) == MAX_HELD_MESSAGES + 50)
        back = await live.come_back()
        replayed = back.of_type("transcript")[0]["messages"]
        assert [m["id"] for m in replayed] == [f"m{n}" for n in range(MAX_HELD_MESSAGES + 50)]
        await live.bridge.end("visitor-ended")

    run(scenario())


def test_a_second_socket_takes_the_call_over_and_the_first_is_told():
    async def scenario() -> None:
        live = await Live(resume_seconds=20).start()
        second = await live.come_back()
        assert live.browser.of_type("error")[-1]["code"] == "taken_over"
        assert live.browser.closed_with == CloseCode.TAKEN_OVER
        assert second.of_type("ready")[0]["resumed"] is True
        await live.drop()  # the first socket's close changes nothing now
        assert not live.bridge.suspended and live.recorder.ended == []
        await live.bridge.end("visitor-ended")
        assert live.recorder.counters[0].suspensions == 0

    run(scenario())


def test_a_call_that_has_ended_cannot_be_resumed():
    async def scenario() -> None:
        live = await Live(resume_seconds=20).start()
        await live.bridge.end("visitor-ended")
        assert not await live.bridge.attach(FakeBrowser(), live.grant)

    run(scenario())


def test_a_voice_call_leaves_the_audio_channel_while_the_visitor_is_away():
    async def scenario() -> None:
        live = await Live(mode="WebAudio", resume_seconds=20).start()
        await live.drop()
        assert live.upstream.sent[-1] == ("leave", ("audio",))
        live.upstream.push(Audio(b"\x01\x00" * 320))  # nobody hears it: not sent anywhere
        back = await live.come_back()
        assert back.audio == []
        await live.bridge.handle(protocol.AudioIn(b"\x02\x00" * 320))
        await live.bridge.handle(protocol.AudioIn(b"\x03\x00" * 320))
        await until(lambda: ("audio", 640) in live.upstream.sent)
        joins = [sent for sent in live.upstream.sent if sent[0] == "join"]
        assert joins == [("join", ("audio", "text")), ("join", ("audio",))]
        assert [s for s in live.upstream.sent if s[0] == "audio"] == [("audio", 640)] * 2
        live.upstream.push(Audio(b"\x04\x00" * 320))
        await until(lambda: len(back.audio) == 1)
        await live.bridge.end("visitor-ended")

    run(scenario())


def test_the_idle_time_and_the_longest_call_count_across_a_resume():
    async def scenario() -> None:
        live = await Live(resume_seconds=20, idle_seconds=60).start()
        await asyncio.sleep(30)
        await live.drop()
        await asyncio.sleep(10)
        back = await live.come_back()
        await asyncio.wait_for(back.closed.wait(), timeout=3600)
        assert live.loop.time() - live.started == pytest.approx(60, abs=0.1)  # not 40 + 60
        assert back.closed_with == CloseCode.TIMEOUT
        assert live.recorder.ended[0].reason == "idle-timeout"

    run(scenario())


def test_a_call_idle_while_its_visitor_is_away_ends_at_its_idle_time():
    async def scenario() -> None:
        live = await Live(resume_seconds=600, idle_seconds=60).start()
        await live.drop()
        await until(lambda: bool(live.recorder.ended), seconds=3600)
        assert live.loop.time() - live.started == pytest.approx(60, abs=0.1)
        assert live.recorder.ended[0].reason == "idle-timeout"

    run(scenario())


def test_a_message_sent_again_after_a_reconnect_reaches_the_agent_once():
    async def scenario() -> None:
        live = await Live(resume_seconds=20).start()
        await live.type("only once", "w7")
        await live.drop()
        back = await live.come_back()
        await live.type("only once", "w7")  # the widget did not see it confirmed
        assert [s for s in live.upstream.sent if s[0] == "text"] == [("text", "only once")]
        assert back.of_type("message")[-1]["id"] == "w7"  # confirmed to the new socket
        await live.bridge.end("visitor-ended")
        assert [m.upstream_id for m in live.recorder.messages] == ["w7"]

    run(scenario())


def test_the_resume_token_is_renewed_while_a_browser_holds_the_call():
    async def scenario() -> None:
        live = await Live(resume_seconds=20, idle_seconds=600).start()
        await asyncio.sleep(tokens.RESUME_REFRESH_SECONDS + 1)
        fresh = live.browser.of_type("resume")
        assert len(fresh) == 1
        assert tokens.read_resume(fresh[0]["token"]).resumes == 0
        await live.bridge.end("visitor-ended")

    run(scenario())


def test_a_server_stop_ends_a_call_whose_visitor_is_away(no_rejoin):
    async def scenario() -> None:
        live = await Live(resume_seconds=20).start()
        await live.drop()
        assert await lifecycle.registry.stop_all() == 1
        assert live.recorder.ended[0].reason == "relay-stopped"
        assert ("leave", ("text",)) in live.upstream.sent

    run(scenario())


def test_a_bridge_cancelled_from_outside_still_ends_the_call(no_rejoin):
    """An event loop that shuts down cancels every task: the call must still end."""

    async def scenario() -> None:
        live = await Live(resume_seconds=20).start()
        await live.drop()
        task = live.bridge._task
        assert task is not None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert live.recorder.ended[0].reason == "relay-stopped"
        assert ("leave", ("text",)) in live.upstream.sent

    run(scenario())


def test_stored_messages_are_replayed_once_each():
    async def scenario() -> None:
        live = await Live(resume_seconds=20).start()
        live.recorder.messages.append(NewMessage("agent", "stored", "s1", True))
        live.upstream.push(agent_says("stored", "s1"))  # also kept: shown once
        await until(lambda: len(live.browser.of_type("message")) == 1)
        await live.drop()
        back = await live.come_back()
        assert [m["id"] for m in back.of_type("transcript")[0]["messages"]] == ["s1"]
        await live.bridge.end("visitor-ended")

    run(scenario())


def test_an_event_loop_shutting_down_still_ends_a_call_whose_visitor_is_away(no_rejoin):
    """As asyncio.run does on its way out: every task is cancelled at once."""

    async def scenario() -> None:
        live = await Live(resume_seconds=20).start()
        await live.type("written before the end")
        await live.drop()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        assert [o.reason for o in live.recorder.ended] == ["relay-stopped"]
        assert [m.text for m in live.recorder.messages] == ["written before the end"]
        assert ("leave", ("text",)) in live.upstream.sent

    run(scenario())


# backpressure


def test_visitor_audio_voicehub_cannot_take_is_dropped_counted_and_told_once_a_while():
    async def scenario() -> None:
        live = await Live(mode="WebAudio").start()
        frame = protocol.AudioIn(b"\x02\x00" * 320)
        await live.bridge.handle(frame)
        live.upstream.backlogged = True
        for _ in range(50):  # a second of audio VoiceHub is too slow to take
            await live.bridge.handle(frame)
            await asyncio.sleep(0.02)
        assert live.browser.of_type("error") == [
            {"type": "error", "code": "upstream_slow", "message": visitor_message("upstream_slow")}
        ]
        await asyncio.sleep(SLOW_NOTICE_SECONDS)
        await live.bridge.handle(frame)
        assert len(live.browser.of_type("error")) == 2
        live.upstream.backlogged = False
        await live.bridge.handle(frame)
        assert [s for s in live.upstream.sent if s[0] == "audio"] == [("audio", 640)] * 2
        await live.bridge.end("visitor-ended")
        assert live.bridge.counters.audio_bytes_in == 2 * 640
        assert live.bridge.counters.audio_bytes_dropped_in == 51 * 640

    run(scenario())


def test_messages_still_reach_voicehub_while_its_audio_is_dropped():
    async def scenario() -> None:
        live = await Live(mode="TextAudio").start()
        live.upstream.backlogged = True
        await live.bridge.handle(protocol.AudioIn(b"\x02\x00" * 320))
        await live.type("still there?")
        assert ("text", "still there?") in live.upstream.sent
        await live.bridge.end("visitor-ended")

    run(scenario())


def test_agent_audio_the_browser_cannot_take_is_counted_and_told_once_a_while():
    async def scenario() -> None:
        live = await Live(mode="WebAudio").start()
        notice = live.bridge.dropped_audio(live.browser, 6400)
        assert notice is not None
        assert json.loads(notice)["code"] == "connection_slow"
        assert live.bridge.dropped_audio(live.browser, 6400) is None
        await asyncio.sleep(SLOW_NOTICE_SECONDS)
        assert live.bridge.dropped_audio(live.browser, 640) is not None
        await live.bridge.end("visitor-ended")
        assert live.bridge.counters.audio_bytes_dropped_out == 6400 * 2 + 640

    run(scenario())
