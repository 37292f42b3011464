"""The upstream session against the sandbox (and two misbehaving peers) over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import pytest
from websockets.asyncio.server import ServerConnection

from tests.voicehub.peers import OPEN, open_peer
from webcall_widget.sandbox.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY
from webcall_widget.voicehub.address import socket_url
from webcall_widget.voicehub.client import create_web_call
from webcall_widget.voicehub.errors import UpstreamClosed, UpstreamConnectFailed
from webcall_widget.voicehub.events import (
    CallEnded,
    EventNames,
    Joined,
    Message,
    Mode,
    Transport,
    UpstreamError,
)
from webcall_widget.voicehub.opening import open_session


async def start(sandbox, mode=Mode.TEXT, transport=Transport.SOCKETIO, agent_id=SANDBOX_AGENT_ID):
    """A call created on the sandbox and its socket opened, as the relay would."""
    created = await asyncio.to_thread(
        create_web_call,
        sandbox.url,
        api_key=SANDBOX_API_KEY,
        agent_id=agent_id,
        mode=mode,
        timeout=5,
    )
    path = created.socket_path if transport is Transport.SOCKETIO else "/ws"
    session = await open_session(
        base_url=sandbox.url,
        socket_path=path,
        transport=transport,
        names=EventNames(),
        connect_timeout=5,
    )
    return created.call_id, session


@pytest.mark.parametrize(
    ("base", "path", "transport", "expected"),
    [
        (
            "https://vh.example",
            "/socket.io",
            Transport.SOCKETIO,
            "wss://vh.example/socket.io/?EIO=4&transport=websocket",
        ),
        (
            "http://127.0.0.1:8000/voicehub-sandbox",
            "/voicehub-sandbox/socket.io/",
            Transport.SOCKETIO,
            "ws://127.0.0.1:8000/voicehub-sandbox/socket.io/?EIO=4&transport=websocket",
        ),
        ("https://vh.example", "calls/c1", Transport.WEBSOCKET, "wss://vh.example/calls/c1"),
        (
            "https://vh.example",
            "wss://rt.example/c?x=1",
            Transport.WEBSOCKET,
            "wss://rt.example/c?x=1",
        ),
        (
            "https://vh.example",
            "https://rt.example/sio?call=1",
            Transport.SOCKETIO,
            "wss://rt.example/sio/?call=1&EIO=4&transport=websocket",
        ),
    ],
)
def test_socket_url_is_built_on_the_voicehub_host(base, path, transport, expected):
    assert socket_url(base, path, transport) == expected


@pytest.mark.parametrize("transport", list(Transport))
async def test_join_is_confirmed_and_the_agent_greets(sandbox, transport):
    call_id, session = await start(sandbox, transport=transport)
    try:
        await session.join(call_id, ("text",))
        assert await session.recv() == Joined(("text",))
        greeting = await session.recv()
        assert isinstance(greeting, Message) and greeting.final
    finally:
        await session.close()


@pytest.mark.parametrize("transport", list(Transport))
async def test_text_is_answered_with_partials_then_a_final_message(sandbox, transport):
    call_id, session = await start(sandbox, transport=transport)
    try:
        await session.join(call_id, ("text",))
        await session.recv()
        await session.recv()
        await session.send_text(call_id, "one two three")
        received = [await session.recv()]
        while not received[-1].final:
            received.append(await session.recv())
        assert received[-1].text == "You said: one two three"
        assert all(m.id == received[-1].id for m in received)
        assert len(received) > 1
    finally:
        await session.close()


async def test_refused_join_arrives_as_an_error_event(sandbox):
    call_id, session = await start(sandbox, mode=Mode.TEXT)
    try:
        await session.join(call_id, ("audio", "text"))
        event = await session.recv()
        assert isinstance(event, UpstreamError)
        assert "may not join the audio channel" in event.message
    finally:
        await session.close()


async def test_agent_hang_up_is_call_ended_then_closed(sandbox):
    call_id, session = await start(sandbox)
    try:
        await session.join(call_id, ("text",))
        await session.send_text(call_id, "bye")
        events = []
        with pytest.raises(UpstreamClosed):
            while True:
                events.append(await session.recv())
        assert events[-1] == CallEnded("agent-hangup")
    finally:
        await session.close()


async def test_close_disconnects_and_the_sandbox_sees_it(sandbox):
    call_id, session = await start(sandbox)
    await session.join(call_id, ("text",))
    await session.recv()
    await session.close()
    await sandbox.state.await_for(lambda: sandbox.state.calls[call_id].ended)
    assert sandbox.state.calls[call_id].ended == "client-disconnected"


async def test_close_twice_is_harmless(sandbox):
    _, session = await start(sandbox)
    await session.close()
    await session.close()


async def test_closed_port_fails_to_connect():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(UpstreamConnectFailed):
        await open_session(
            base_url=f"http://127.0.0.1:{port}",
            socket_path="/socket.io",
            transport=Transport.SOCKETIO,
            names=EventNames(),
            connect_timeout=2,
        )


async def test_path_that_is_not_a_socket_fails_to_connect(sandbox):
    with pytest.raises(UpstreamConnectFailed):
        await open_session(
            base_url=sandbox.url,
            socket_path="/nothing-here",
            transport=Transport.SOCKETIO,
            names=EventNames(),
            connect_timeout=2,
        )


async def test_heartbeat_ping_is_answered_with_pong(peer):
    answers: asyncio.Queue[str] = asyncio.Queue()

    async def handler(ws: ServerConnection) -> None:
        await ws.send(OPEN)
        assert await ws.recv() == "40"
        await ws.send('40{"sid":"x"}')
        await ws.send("2")
        await answers.put(str(await ws.recv()))
        await ws.send('42["created",{"id":"1","role":"agent","text":"hi"}]')
        await ws.wait_closed()

    url = await peer(handler)
    session = await open_peer(url)
    try:
        event = await session.recv()
        assert isinstance(event, Message)
        assert await answers.get() == "3"
    finally:
        await session.close()


async def test_silent_upstream_is_declared_gone_after_missed_heartbeats(peer):
    async def handler(ws: ServerConnection) -> None:
        await ws.send(OPEN)
        await ws.recv()
        await ws.send('40{"sid":"x"}')
        await ws.wait_closed()  # then never pings

    url = await peer(handler)
    session = await open_peer(url)
    try:
        with pytest.raises(UpstreamClosed, match="missed heartbeats"):
            async with asyncio.timeout(5):
                await session.recv()
    finally:
        await session.close()


async def test_a_reader_cancelled_again_and_again_still_notices_the_silence(peer):
    """Liveness counts from the last frame received, not from the latest ``recv()``."""

    async def handler(ws: ServerConnection) -> None:
        await ws.send(OPEN)
        await ws.recv()
        await ws.send('40{"sid":"x"}')
        await ws.wait_closed()

    url = await peer(handler)
    session = await open_peer(url)
    started = asyncio.get_running_loop().time()
    try:
        with pytest.raises(UpstreamClosed, match="missed heartbeats"):
            while True:  # as a pump woken every 0.2 s by a visitor who keeps typing
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.2):
                        await session.recv()
        assert asyncio.get_running_loop().time() - started < 5
    finally:
        await session.close()


async def test_refused_socketio_connect_fails_to_connect(peer):
    async def handler(ws: ServerConnection) -> None:
        await ws.send(OPEN)
        await ws.recv()
        await ws.send(json.dumps({"message": "unauthorized"}).join(["44", ""]))
        await ws.wait_closed()

    url = await peer(handler)
    with pytest.raises(UpstreamConnectFailed, match="unauthorized"):
        await open_peer(url)


async def test_handshake_that_never_finishes_times_out(peer):
    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()  # accepts the WebSocket, never opens Engine.IO

    url = await peer(handler)
    with pytest.raises(UpstreamConnectFailed, match="within"):
        await open_peer(url, connect_timeout=0.3)


async def test_garbage_from_upstream_closes_the_session(peer):
    async def handler(ws: ServerConnection) -> None:
        await ws.send(OPEN)
        await ws.recv()
        await ws.send('40{"sid":"x"}')
        await ws.send("42{not json")
        await ws.wait_closed()

    url = await peer(handler)
    session = await open_peer(url)
    try:
        with pytest.raises(UpstreamClosed, match="Socket.IO protocol"):
            await session.recv()
    finally:
        await session.close()
