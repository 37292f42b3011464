"""A call's mailbox (``CallMailbox``): a bridge on fakes, on virtual time, reached through
Channels' in-memory layer as a process that resumes the call's socket elsewhere would
reach it (message by message, as :mod:`webcall_widget.relay.remote` sends them)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from tests.polling import until
from tests.relay.fakes import BreakableLayer, CountingLayer
from tests.relay.test_bridge import ORIGIN, Live, agent_says
from tests.relay.virtual_time import run
from webcall_widget.relay import messages, protocol
from webcall_widget.relay.mailbox import CallMailbox, aend_call
from webcall_widget.relay.protocol import CloseCode
from webcall_widget.voicehub.events import Audio


async def with_mailbox(layer: InMemoryChannelLayer, *, joined: bool = True) -> Live:
    """A live call with a mailbox, in the call's group once ``joined``."""
    live = await Live(mailbox=CallMailbox(layer), resume_seconds=20).start()
    group = messages.call_group(live.call.call_id)
    if joined:
        await until(lambda: bool(layer.groups.get(group)))
    return live


class Elsewhere:
    """A browser socket on another process, as the mailbox hears from it."""

    def __init__(self, layer: InMemoryChannelLayer, live: Live) -> None:
        self.layer = layer
        self.live = live
        self.channel = ""
        self.owner = ""

    async def attach(self) -> Elsewhere:
        self.channel = await self.layer.new_channel()
        group = messages.call_group(self.live.call.call_id)
        await self.layer.group_send(group, messages.attach(self.channel, ORIGIN, 1))
        attached = await self.next()
        assert attached["type"] == messages.ATTACHED
        self.owner = attached["owner"]
        return self

    async def next(self) -> dict[str, Any]:
        return await self.layer.receive(self.channel)

    async def next_frame(self) -> dict[str, Any]:
        message = await self.next()
        assert message["type"] == messages.TEXT, message
        frame: dict[str, Any] = json.loads(message["text"])
        return frame

    async def says(self, message: messages.VisitorMessage) -> None:
        await self.layer.send(self.owner, messages.visitor_message(self.channel, message))


def test_a_socket_elsewhere_resumes_the_call_and_what_it_says_reaches_the_agent():
    async def scenario() -> None:
        layer = InMemoryChannelLayer()
        live = await with_mailbox(layer)
        socket = await Elsewhere(layer, live).attach()
        ready = await socket.next_frame()
        assert (ready["type"], ready["resumed"]) == ("ready", True)
        assert (await socket.next_frame())["type"] == "transcript"
        assert live.browser.closed_with == CloseCode.TAKEN_OVER
        await socket.says(messages.Frame(protocol.Text("from elsewhere", "w1")))
        assert (await socket.next_frame())["text"] == "from elsewhere"
        assert ("text", "from elsewhere") in live.upstream.sent
        await live.bridge.end("visitor-ended")

    run(scenario())


def test_a_frame_refused_elsewhere_is_answered_there_and_ends_the_call_when_it_must():
    async def scenario() -> None:
        layer = InMemoryChannelLayer()
        live = await with_mailbox(layer)
        socket = await Elsewhere(layer, live).attach()
        await socket.next_frame(), await socket.next_frame()  # ready, transcript
        malformed = protocol.ProtocolError("malformed_frame", "", CloseCode.MALFORMED_FRAME)
        await socket.says(messages.Refused(malformed, None))
        assert (await socket.next_frame())["code"] == "malformed_frame"
        assert (await socket.next_frame())["type"] == "ended"
        assert await socket.next() == {"type": messages.CLOSE, "code": CloseCode.MALFORMED_FRAME}
        assert live.recorder.ended[0].reason == "malformed-frame"

    run(scenario())


def test_a_socket_elsewhere_that_closes_leaves_the_call_waiting_for_its_visitor():
    async def scenario() -> None:
        layer = InMemoryChannelLayer()
        live = await with_mailbox(layer)
        socket = await Elsewhere(layer, live).attach()
        await socket.next_frame(), await socket.next_frame()
        group = messages.call_group(live.call.call_id)
        await layer.group_send(group, {"type": messages.DETACH, "browser": socket.channel})
        await until(lambda: live.bridge.suspended)
        assert live.recorder.ended == []
        await live.bridge.end("visitor-ended")

    run(scenario())


def test_audio_the_socket_elsewhere_dropped_is_counted_and_its_visitor_told():
    async def scenario() -> None:
        layer = InMemoryChannelLayer()
        live = await with_mailbox(layer)
        socket = await Elsewhere(layer, live).attach()
        await socket.next_frame(), await socket.next_frame()
        await socket.says(messages.Dropped(640))
        assert (await socket.next_frame())["code"] == "connection_slow"
        assert live.bridge.counters.audio_bytes_dropped_out == 640
        await live.bridge.end("visitor-ended")

    run(scenario())


def test_audio_a_replaced_socket_elsewhere_dropped_is_still_counted():
    async def scenario() -> None:
        layer = InMemoryChannelLayer()
        live = await with_mailbox(layer)
        socket = await Elsewhere(layer, live).attach()
        await socket.next_frame(), await socket.next_frame()
        for _ in range(2):  # resumed twice more: the mailbox forgets the first socket
            newer = await Elsewhere(layer, live).attach()
            await newer.next_frame(), await newer.next_frame()
        await socket.says(messages.Dropped(640))
        await until(lambda: live.bridge.counters.audio_bytes_dropped_out == 640)
        await live.bridge.end("visitor-ended")
        assert live.recorder.counters[0].audio_bytes_dropped_out == 640

    run(scenario())


def test_a_socket_elsewhere_the_channel_layer_no_longer_reaches_leaves_the_call_waiting():
    """Redis went away under a call whose visitor's socket is on another process: what is
    sent to it fails, and the call waits for the visitor to come back, as after a dropped
    socket (it ended, relay-error, with a send's exception from its upstream pump). What was
    said meanwhile is in the replay of the socket that comes back."""

    async def scenario() -> None:
        layer = BreakableLayer()
        live = await with_mailbox(layer)
        socket = await Elsewhere(layer, live).attach()
        await socket.next_frame(), await socket.next_frame()
        layer.failing = {"send"}
        live.upstream.push(agent_says("are you there?"))
        live.upstream.push(Audio(b"\x01\x00" * 320))
        await until(lambda: live.bridge.suspended)
        live.upstream.push(agent_says("hello again?", "a2"))
        layer.failing = set()
        back = await live.come_back()
        replay = back.of_type("transcript")[0]["messages"]
        assert [m["text"] for m in replay][-2:] == ["are you there?", "hello again?"]
        assert live.recorder.ended == []
        await live.bridge.end("visitor-ended")
        assert live.recorder.ended[0].reason == "visitor-ended"

    run(scenario())


def test_a_message_the_mailbox_cannot_read_is_logged_and_the_next_one_is_read(caplog):
    async def scenario() -> None:
        layer = InMemoryChannelLayer()
        live = await with_mailbox(layer)
        group = messages.call_group(live.call.call_id)
        await layer.group_send(group, {"type": messages.ATTACH})  # another version's
        await layer.group_send(group, {"type": messages.END})
        await live.ended()
        assert live.recorder.ended[0].reason == "ended-by-staff"

    with caplog.at_level(logging.ERROR, "webcall_widget.relay"):
        run(scenario())
    assert "a 'webcall.attach' message failed" in caplog.text


@pytest.mark.parametrize(
    ("fails", "logged"),
    [
        ("group_add", "its channel layer failed"),
        ("receive", "its channel layer failed"),
    ],
)
def test_a_failing_channel_layer_leaves_the_call_going(caplog, fails, logged):
    async def scenario() -> None:
        layer = BreakableLayer()
        layer.failing = {fails}
        live = await with_mailbox(layer, joined=False)
        await until(lambda: logged in caplog.text)
        await live.type("still relayed")
        assert ("text", "still relayed") in live.upstream.sent
        await live.bridge.end("visitor-ended")
        assert live.recorder.ended[0].reason == "visitor-ended"

    with caplog.at_level(logging.ERROR, "webcall_widget.relay"):
        run(scenario())


def test_a_call_s_mailbox_stops_reading_without_cancelling_a_receive():
    """On channels_redis a cancelled receive can lose another call's message (a hang-up,
    a close) as calls end together: the mailbox's read is ended with a message."""

    async def scenario() -> None:
        layer = CountingLayer()
        live = await with_mailbox(layer)
        await live.bridge.end("visitor-ended")
        assert layer.cancelled == 0

    run(scenario())


async def test_ending_a_call_without_a_channel_layer_says_what_is_missing():
    with (
        override_settings(CHANNEL_LAYERS={}),
        pytest.raises(ImproperlyConfigured, match="CHANNEL_LAYERS"),
    ):
        await aend_call("7d1f0c56-3b7e-4f43-9a51-0c5a0f3c2d10")
