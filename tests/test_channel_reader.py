"""``ChannelReader``: a channel of the channel layer, read so that no receive under way is
ever cancelled but when the layer is down, on Channels' in-memory layer (counting the
receives cancelled). What a cancelled receive costs on channels_redis, messages of the
process's other channels lost, is shown by the chaos test of a Redis restart
(tests/test_chaos.py), where many calls end at once."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import InMemoryChannelLayer

from tests.relay.fakes import CountingLayer
from webcall_widget.channel_layers import ChannelReader


async def test_a_receive_whose_task_is_cancelled_leaves_the_next_message_to_the_next_receive():
    layer = InMemoryChannelLayer()
    reader = ChannelReader(layer, await layer.new_channel())
    waiting = asyncio.create_task(reader.receive())
    await asyncio.sleep(0)
    waiting.cancel()
    await layer.send(reader.channel, {"type": "frame"})
    assert await reader.receive(within=1) == {"type": "frame"}


async def test_a_receive_given_a_time_returns_none_after_it_and_the_message_comes_later():
    layer = InMemoryChannelLayer()
    reader = ChannelReader(layer, await layer.new_channel())
    assert await reader.receive(within=0.05) is None
    await layer.send(reader.channel, {"type": "frame"})
    assert await reader.receive(within=1) == {"type": "frame"}


async def test_stopping_ends_the_receive_under_way_with_a_message_and_leaves_none_behind():
    layer = CountingLayer()
    reader = ChannelReader(layer, await layer.new_channel())
    assert await reader.receive(within=0.01) is None
    await reader.stop()
    assert layer.cancelled == 0
    assert reader.channel not in layer.channels


async def test_stopping_while_the_layer_is_down_cancels_the_receive_at_once():
    layer = CountingLayer()
    reader = ChannelReader(layer, await layer.new_channel())
    assert await reader.receive(within=0.01) is None
    layer.failing.add("send")
    async with asyncio.timeout(1):
        await reader.stop()
    assert layer.cancelled == 1


async def test_the_layer_s_failure_reaches_the_reader():
    layer = CountingLayer()
    reader = ChannelReader(layer, await layer.new_channel())
    layer.failing.add("receive")
    with pytest.raises(Exception, match="Redis went away"):
        await reader.receive()
