"""A resumed socket whose call another process holds (``RemoteCall``), over Channels'
in-memory layer; the test plays the process that holds the call (its mailbox) by hand,
message by message, as :mod:`webcall_widget.relay.mailbox` would."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer

from tests.polling import until
from tests.relay.fakes import BreakableLayer, CountingLayer, FakeBrowser, make_call
from tests.relay.virtual_time import run
from webcall_widget.conf import get_settings
from webcall_widget.models import Call, CallStatus
from webcall_widget.relay import messages, protocol, tokens
from webcall_widget.relay.port import CallPort
from webcall_widget.relay.protocol import CloseCode
from webcall_widget.relay.remote import RemoteCall
from webcall_widget.voicehub.events import Mode


class RecordingPort:
    """The port of a call taken over here: what it was handed, in order."""

    mode = Mode.TEXT

    def __init__(self) -> None:
        self.handed: list[Any] = []

    async def take(self, frame: protocol.ClientFrame) -> None:
        self.handed.append(frame)

    async def refuse(self, error: protocol.ProtocolError, reason: str | None = None) -> None:
        self.handed.append((error.code, reason))

    def audio_dropped(self, size: int) -> str | None:
        self.handed.append(size)
        return None

    async def socket_closed(self, code: int | None) -> None:
        self.handed.append(("closed", code))


class Owner:
    """The process holding the call, as the socket's process reaches it: a mailbox in
    the call's group."""

    def __init__(self, layer: InMemoryChannelLayer, call_id: Any) -> None:
        self.layer = layer
        self.call_id = call_id
        self.channel = ""
        self.socket = ""  # the resumed socket's channel, from its attach

    async def join(self) -> Owner:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(messages.call_group(self.call_id), self.channel)
        return self

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.layer.receive(self.channel), 5)

    async def read_attach(self) -> None:
        attach = await self.next()
        assert attach["type"] == messages.ATTACH
        self.socket = attach["reply"]

    async def answer_attach(self) -> None:
        await self.read_attach()
        await self.to_socket({"type": messages.ATTACHED, "owner": self.channel})

    async def attached(self) -> None:
        """Wait until the socket read the answer to its attach: it sends here directly."""
        await until(lambda: self.layer.channels[self.socket].empty())

    async def to_socket(self, message: dict[str, Any]) -> None:
        await self.layer.send(self.socket, message)

    async def visitor_said(self) -> messages.VisitorMessage | None:
        message = await self.next()
        assert message["type"] == messages.FRAME and message["browser"] == self.socket
        return messages.read_visitor_message(message)


async def never_taken_over() -> CallPort | None:
    raise AssertionError("the process holding the call answered: nothing is taken over")


def remote_call(
    layer: InMemoryChannelLayer,
    browser: FakeBrowser,
    *,
    take_over: Any = never_taken_over,
    attach_timeout: float = 30,
    **call_fields: Any,
) -> RemoteCall:
    return RemoteCall(
        layer,
        make_call(**call_fields),
        browser,
        get_settings(),
        take_over=take_over,
        attach_timeout=attach_timeout,
    )


def grant_for(remote: RemoteCall) -> tokens.Grant:
    return tokens.Grant(remote.call_id, "https://shop.example", 1)


async def test_what_the_visitor_says_before_the_holder_answers_reaches_it_first_in_order():
    layer = InMemoryChannelLayer()
    browser = FakeBrowser()
    remote = remote_call(layer, browser)
    owner = await Owner(layer, remote.call_id).join()
    await remote.open(grant_for(remote))
    await remote.take(protocol.Text("one", "w1"))
    await remote.refuse(protocol.ProtocolError("rate_limited", "slow down"), "too fast")
    await owner.answer_attach()
    await remote.take(protocol.Text("two", "w2"))  # possibly before ATTACHED is read
    assert await owner.visitor_said() == messages.Frame(protocol.Text("one", "w1"))
    refused = await owner.visitor_said()
    assert isinstance(refused, messages.Refused)
    assert (refused.error.code, refused.reason) == ("rate_limited", "too fast")
    assert await owner.visitor_said() == messages.Frame(protocol.Text("two", "w2"))
    await remote.socket_closed(1001)


async def test_a_holder_that_does_not_read_has_the_visitors_frames_dropped_with_one_warning(
    caplog,
):
    layer = InMemoryChannelLayer(capacity=1)
    remote = remote_call(layer, FakeBrowser())
    owner = await Owner(layer, remote.call_id).join()
    await remote.open(grant_for(remote))
    await owner.answer_attach()
    await owner.attached()
    await remote.take(protocol.Text("read", None))
    for text in ("lost", "lost too"):
        await remote.take(protocol.Text(text, None))
    warnings = [r for r in caplog.records if "not reading" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert await owner.visitor_said() == messages.Frame(protocol.Text("read", None))
    await remote.take(protocol.Text("read again", None))
    assert await owner.visitor_said() == messages.Frame(protocol.Text("read again", None))
    await remote.socket_closed(1001)


async def test_audio_the_socket_dropped_is_told_to_the_holder_with_the_next_agent_audio():
    layer = InMemoryChannelLayer()
    browser = FakeBrowser()
    remote = remote_call(layer, browser, mode="WebAudio")
    owner = await Owner(layer, remote.call_id).join()
    await remote.open(grant_for(remote))
    await owner.answer_attach()
    assert remote.audio_dropped(640) is None  # the holder tells the visitor, not this socket
    await owner.to_socket({"type": messages.BYTES, "bytes": b"\x00\x01" * 160})
    assert await owner.visitor_said() == messages.Dropped(640)
    assert browser.audio == [b"\x00\x01" * 160]
    await remote.socket_closed(1001)


async def test_dropped_audio_the_holder_could_not_take_is_told_with_the_following_audio():
    layer = InMemoryChannelLayer(capacity=1)
    browser = FakeBrowser()
    remote = remote_call(layer, browser, mode="WebAudio")
    owner = await Owner(layer, remote.call_id).join()
    await remote.open(grant_for(remote))
    await owner.answer_attach()
    await owner.attached()
    await layer.send(owner.channel, {"type": "webcall.test.filler"})  # the holder is behind
    remote.audio_dropped(640)
    await owner.to_socket({"type": messages.BYTES, "bytes": b"a"})
    await until(lambda: len(browser.audio) == 1)
    assert (await owner.next())["type"] == "webcall.test.filler"
    remote.audio_dropped(320)
    await until(lambda: layer.channels[owner.socket].empty())
    await owner.to_socket({"type": messages.BYTES, "bytes": b"b"})
    assert await owner.visitor_said() == messages.Dropped(960)
    await remote.socket_closed(1001)


async def test_what_the_holder_sends_reaches_the_socket_until_it_closes_it():
    layer = InMemoryChannelLayer()
    browser = FakeBrowser()
    remote = remote_call(layer, browser)
    owner = await Owner(layer, remote.call_id).join()
    await remote.open(grant_for(remote))
    await owner.answer_attach()
    await owner.to_socket({"type": "webcall.from-a-newer-version"})  # ignored
    await owner.to_socket({"type": messages.TEXT, "text": '{"type": "pong", "t": 1}'})
    await owner.to_socket({"type": messages.CLOSE, "code": int(CloseCode.TAKEN_OVER)})
    await asyncio.wait_for(browser.closed.wait(), 5)
    assert browser.frames == [{"type": "pong", "t": 1}]
    assert browser.closed_with == CloseCode.TAKEN_OVER
    await remote.socket_closed(CloseCode.TAKEN_OVER)


async def test_a_resumed_socket_that_closes_stops_reading_without_cancelling_a_receive():
    """On channels_redis a cancelled receive can lose a message of another socket or call
    of the process: the reader is ended with a message."""
    layer = CountingLayer()
    remote = remote_call(layer, FakeBrowser())
    owner = await Owner(layer, remote.call_id).join()
    await remote.open(grant_for(remote))
    await owner.answer_attach()
    await owner.attached()
    await remote.socket_closed(1001)
    assert layer.cancelled == 0


def test_a_holder_that_does_not_answer_in_time_is_given_up_without_cancelling_a_receive():
    async def scenario() -> int:
        layer = CountingLayer()

        async def shown_as_it_ended() -> None:
            return None

        remote = remote_call(layer, FakeBrowser(), take_over=shown_as_it_ended, attach_timeout=1.5)
        await remote.open(grant_for(remote))  # nobody is in the call's group
        await asyncio.sleep(2)
        await remote.socket_closed(1001)
        return layer.cancelled

    assert run(scenario()) == 0


def test_what_the_visitor_said_while_the_holder_was_silent_reaches_the_call_taken_over():
    async def scenario() -> list[Any]:
        port = RecordingPort()

        async def take_over() -> CallPort:
            return port

        browser = FakeBrowser()
        remote = remote_call(
            InMemoryChannelLayer(), browser, take_over=take_over, attach_timeout=1.5
        )
        await remote.open(grant_for(remote))  # nobody is in the call's group
        await remote.take(protocol.Text("hello?", "w1"))
        await remote.refuse(protocol.ProtocolError("bad_frame", "?"), None)
        await asyncio.sleep(2)
        await remote.socket_closed(1001)
        return port.handed

    assert run(scenario()) == [protocol.Text("hello?", "w1"), ("bad_frame", None)]


def test_a_silent_holder_whose_call_ended_meanwhile_drops_what_the_visitor_said():
    async def scenario() -> tuple[int, FakeBrowser]:
        asked = 0

        async def take_over() -> None:
            nonlocal asked
            asked += 1
            return None  # it showed the socket how the call ended

        browser = FakeBrowser()
        remote = remote_call(
            InMemoryChannelLayer(), browser, take_over=take_over, attach_timeout=1.5
        )
        await remote.open(grant_for(remote))
        await remote.take(protocol.Text("anyone?", None))
        await asyncio.sleep(2)
        await remote.socket_closed(1001)
        return asked, browser

    asked, browser = run(scenario())
    assert asked == 1 and browser.frames == []


async def test_a_channel_layer_that_fails_while_reading_sends_the_visitor_to_resume(caplog):
    """Redis went away: the call goes on where it is held and waits for the visitor; the
    socket is closed 4013, which the widget answers with a resume (1012 made it fail the
    call)."""
    layer = BreakableLayer()
    layer.failing = {"receive"}
    browser = FakeBrowser()
    remote = remote_call(layer, browser)
    await remote.open(grant_for(remote))
    await asyncio.wait_for(browser.closed.wait(), 5)
    assert browser.closed_with == CloseCode.MOVING
    assert "lost its channel layer" in caplog.text
    await remote.socket_closed(1001)


async def test_a_visitor_frame_the_channel_layer_cannot_carry_sends_the_visitor_to_resume(
    caplog,
):
    """Redis went away as the visitor typed: their socket is closed 4013 (the widget sends
    what it typed again once the call is back), not failed by the frame's error (1011)."""
    layer = BreakableLayer()
    browser = FakeBrowser()
    remote = remote_call(layer, browser)
    owner = await Owner(layer, remote.call_id).join()
    await remote.open(grant_for(remote))
    await owner.answer_attach()
    await owner.attached()
    layer.failing = {"send"}
    await remote.take(protocol.Text("hello", "w1"))
    await asyncio.wait_for(browser.closed.wait(), 5)
    assert browser.closed_with == CloseCode.MOVING
    assert "lost its channel layer" in caplog.text
    browser.closed.clear()
    await remote.take(protocol.Text("and again", "w2"))
    assert not browser.closed.is_set()  # closed once
    await remote.socket_closed(4013)


async def test_a_detach_the_channel_layer_cannot_carry_is_logged_and_not_raised(caplog):
    layer = BreakableLayer()
    remote = remote_call(layer, FakeBrowser())
    await remote.open(grant_for(remote))
    layer.failing = {"send", "group_send"}  # its reader waits already: only the detach fails
    await remote.socket_closed(1001)
    assert "could not tell its process the socket closed" in caplog.text


@pytest.mark.django_db(transaction=True)
async def test_a_call_that_ended_before_it_could_be_attached_is_shown_as_it_ended(agent):
    call = await database_sync_to_async(Call.objects.create)(
        agent=agent, mode="text", status=CallStatus.ENDED, end_reason="agent-ended"
    )
    layer = InMemoryChannelLayer()
    browser = FakeBrowser()
    remote = remote_call(layer, browser, call_id=call.pk)
    owner = await Owner(layer, remote.call_id).join()
    await remote.open(grant_for(remote))
    await owner.read_attach()
    await owner.to_socket({"type": messages.OVER})
    await asyncio.wait_for(browser.closed.wait(), 5)
    assert [f["type"] for f in browser.frames] == ["transcript", "error", "ended"]
    assert browser.frames[-1]["reason"] == "agent-ended"
    assert browser.closed_with == CloseCode.NORMAL
    await remote.socket_closed(1000)
