"""The upstream session against hand-written peers on real sockets: handshakes that go
astray, frames it cannot read, acknowledgements nobody asked for, and joins answered by
something other than a confirmation."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection

from tests.voicehub.peers import OPEN, open_peer
from webcall_widget.voicehub.errors import (
    UpstreamClosed,
    UpstreamConnectFailed,
    UpstreamHungUp,
    UpstreamRejoinRefused,
)
from webcall_widget.voicehub.events import Message, Transport
from webcall_widget.voicehub.monitor import UpstreamReport

CONNECTED = '40{"sid":"x"}'
GREETING = '42["created",{"id":"1","role":"agent","text":"hi","final":true}]'


def event(name: str, data: Any) -> str:
    return "42" + json.dumps([name, data])


async def connected(ws: ServerConnection) -> None:
    """The Socket.IO handshake, as VoiceHub does it."""
    await ws.send(OPEN)
    assert await ws.recv() == "40"
    await ws.send(CONNECTED)


# the handshake


async def test_a_socket_that_does_not_open_engine_io_fails_to_connect(peer):
    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"\x00\x01")
        await ws.wait_closed()

    url = await peer(handler)
    with pytest.raises(UpstreamConnectFailed, match="did not open an Engine.IO session"):
        await open_peer(url)


async def test_a_binary_frame_instead_of_the_connect_confirmation_fails_to_connect(peer):
    async def handler(ws: ServerConnection) -> None:
        await ws.send(OPEN)
        await ws.recv()
        await ws.send(b"\x00\x01")
        await ws.wait_closed()

    url = await peer(handler)
    with pytest.raises(UpstreamConnectFailed, match="did not confirm the Socket.IO connection"):
        await open_peer(url)


async def test_an_event_before_the_connect_confirmation_fails_to_connect(peer):
    async def handler(ws: ServerConnection) -> None:
        await ws.send(OPEN)
        await ws.recv()
        await ws.send(GREETING)
        await ws.wait_closed()

    url = await peer(handler)
    with pytest.raises(UpstreamConnectFailed, match="did not confirm the Socket.IO connection"):
        await open_peer(url)


async def test_a_heartbeat_during_the_handshake_is_answered_and_the_socket_opens(peer):
    pongs: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.send(OPEN)
        await ws.recv()
        await ws.send("2probe")
        pongs.append(str(await ws.recv()))
        await ws.send(CONNECTED)
        await ws.send(GREETING)
        await ws.wait_closed()

    session = await open_peer(await peer(handler))
    try:
        assert isinstance(await session.recv(), Message)
        assert pongs == ["3probe"]
    finally:
        await session.close()


async def test_packets_for_another_namespace_during_the_handshake_are_skipped(peer):
    async def handler(ws: ServerConnection) -> None:
        await ws.send(OPEN)
        await ws.recv()
        await ws.send('40/other,{"sid":"y"}')
        await ws.send(CONNECTED)
        await ws.send(GREETING)
        await ws.wait_closed()

    session = await open_peer(await peer(handler))
    try:
        assert isinstance(await session.recv(), Message)
    finally:
        await session.close()


# what arrives


async def test_frames_a_plain_websocket_cannot_read_are_counted_and_skipped(peer):
    async def handler(ws: ServerConnection) -> None:
        await ws.send("not json")
        await ws.send('{"data": {"text": "an event without a name"}}')
        await ws.send(json.dumps({"event": "created", "data": {"id": "1", "text": "hi"}}))
        await ws.wait_closed()

    report = UpstreamReport()
    session = await open_peer(
        await peer(handler), transport=Transport.WEBSOCKET, socket_path="/ws", report=report
    )
    try:
        message = await session.recv()
        assert isinstance(message, Message) and message.text == "hi"
        assert report.bad_payloads == 2
    finally:
        await session.close()


async def test_a_socket_that_fails_is_tapped_as_closed_but_not_by_voicehub(peer):
    async def handler(ws: ServerConnection) -> None:
        await connected(ws)
        await ws.send("42{not json")
        await ws.wait_closed()

    tapped: list[tuple[str, str, Any]] = []
    session = await open_peer(
        await peer(handler), tap=lambda *record: tapped.append(record), log=False
    )
    try:
        with pytest.raises(UpstreamClosed):
            await session.recv()
        direction, _, data = tapped[-1]
        assert (direction, data) == ("closed", {"by_upstream": False})
    finally:
        await session.close()


async def test_an_acknowledgement_nobody_asked_for_is_ignored(peer):
    async def handler(ws: ServerConnection) -> None:
        await connected(ws)
        await ws.send('437[{"ok":true}]')
        await ws.send(GREETING)
        await ws.wait_closed()

    session = await open_peer(await peer(handler))
    try:
        assert isinstance(await session.recv(), Message)
    finally:
        await session.close()


# joining


def joined_with(*before: str, answer: str | None) -> Any:
    """A peer that answers the join with the frames ``before``, then ``answer``."""

    async def handler(ws: ServerConnection) -> None:
        await connected(ws)
        join = await ws.recv()
        assert str(join).startswith('42["channel.join"')
        for frame in before:
            await ws.send(frame)
        if answer is not None:
            await ws.send(answer)
        await ws.wait_closed()

    return handler


async def test_what_comes_before_the_join_is_confirmed_is_handed_back_in_order(peer):
    joined = event("channel.joined", {"channels": ["text"]})
    session = await open_peer(await peer(joined_with(GREETING, answer=joined)))
    try:
        held = await session.join_confirmed("c1", ("text",), seconds=5)
        assert [type(e) for e in held] == [Message]
    finally:
        await session.close()


async def test_a_socket_voicehub_closes_before_a_first_join_is_confirmed_hung_up(peer):
    session = await open_peer(await peer(joined_with(answer="41")))
    try:
        with pytest.raises(UpstreamHungUp):
            await session.join_confirmed("c1", ("text",), seconds=5)
    finally:
        await session.close()


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ("41", "closed the socket"),
        (event("call.ended", {"reason": "taken"}), "ended the call (taken)"),
    ],
)
async def test_a_rejoin_voicehub_closes_or_ends_is_refused(peer, answer, says):
    session = await open_peer(await peer(joined_with(answer=answer)))
    try:
        with pytest.raises(UpstreamRejoinRefused, match=re.escape(says)):
            await session.join_confirmed("c1", ("text",), seconds=5, under_way=True)
    finally:
        await session.close()
