"""The bridge's view of a browser socket on another process (``RemoteBrowser``), over
Channels' in-memory layer with a capacity of one message, so that a consumer that does
not keep up is a channel that is full."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.layers import InMemoryChannelLayer

from tests.relay.fakes import BreakableLayer
from webcall_widget.relay.mailbox import RemoteBrowser
from webcall_widget.relay.messages import BYTES, TEXT


async def full_channel() -> tuple[InMemoryChannelLayer, str]:
    layer = InMemoryChannelLayer(capacity=1)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": TEXT, "text": "{}"})
    return layer, channel


async def test_agent_audio_a_full_channel_refuses_is_counted_as_dropped():
    layer, channel = await full_channel()
    dropped: list[int] = []
    remote = RemoteBrowser(layer, channel, "call", dropped.append)
    await remote.send_bytes(b"\x01\x00" * 320)
    assert dropped == [640]


async def test_agent_audio_the_channel_takes_is_not_counted_as_dropped():
    layer = InMemoryChannelLayer(capacity=1)
    channel = await layer.new_channel()
    dropped: list[int] = []
    remote = RemoteBrowser(layer, channel, "call", dropped.append)
    await remote.send_bytes(b"\x01\x00" * 320)
    assert dropped == []
    assert await layer.receive(channel) == {"type": BYTES, "bytes": b"\x01\x00" * 320}


async def test_a_text_frame_a_full_channel_refuses_is_not_counted_as_audio():
    layer, channel = await full_channel()
    dropped: list[int] = []
    remote = RemoteBrowser(layer, channel, "call", dropped.append)
    await remote.send_text('{"type": "pong", "t": 1}')
    assert dropped == []


async def test_a_channel_that_stays_full_is_warned_about_once_until_it_takes_frames_again(
    caplog,
):
    layer, channel = await full_channel()
    remote = RemoteBrowser(layer, channel, "call")
    for _ in range(3):
        await remote.send_text('{"type": "pong", "t": 1}')
    await layer.receive(channel)  # its consumer reads again
    await remote.send_text('{"type": "pong", "t": 2}')
    await remote.send_text('{"type": "pong", "t": 3}')  # full again
    warnings = [r for r in caplog.records if "is not reading" in r.getMessage()]
    assert len(warnings) == 2


async def test_a_socket_the_channel_layer_fails_to_reach_is_lost_once_and_sent_nothing_more(
    caplog,
):
    """Redis went away: the send is not raised into the call; the call hears once that the
    socket is lost, and what follows is dropped without asking the layer again."""
    layer = BreakableLayer()
    channel = await layer.new_channel()
    lost: list[bool] = []
    remote = RemoteBrowser(layer, channel, "call", on_lost=lambda: lost.append(True))
    layer.failing = {"send"}
    await remote.send_text('{"type": "pong", "t": 1}')
    await remote.send_bytes(b"\x01\x00" * 320)
    layer.failing = set()
    await remote.close(1000)
    assert lost == [True]
    assert layer.channels.get(channel) is None or layer.channels[channel].empty()
    assert caplog.text.count("cannot be reached") == 1


class SlowToSend(InMemoryChannelLayer):
    """Sends a frame that says "slow" after a while, as channels_redis's round trips
    sometimes take."""

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        if "slow" in message.get("text", ""):
            await asyncio.sleep(0.05)
        await super().send(channel, message)


async def test_frames_reach_the_socket_in_the_order_the_call_sent_them():
    """The echo of the visitor's message, then the agent's answer to it, sent by two
    tasks of the call: they arrive in that order, however long each send takes."""
    layer = SlowToSend()
    channel = await layer.new_channel()
    remote = RemoteBrowser(layer, channel, "call")
    await asyncio.gather(remote.send_text('{"slow": "echo"}'), remote.send_text('{"answer": 1}'))
    received = [(await layer.receive(channel))["text"] for _ in range(2)]
    assert received == ['{"slow": "echo"}', '{"answer": 1}']
