"""Backpressure over real sockets: a browser, or a VoiceHub, that reads slower than audio
comes. The relay runs on Uvicorn (whose ``send`` waits while the socket's buffer is full),
the sandbox on a server of its own; the slow reader is a real socket that stops reading,
with a small receive buffer so that the kernel does not hide it for long."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import RunningSandbox
from tests.servers import ServerThread, post_create_call
from webcall_widget.models import Agent, Call
from webcall_widget.relay import lifecycle
from webcall_widget.relay.bridge import Bridge
from webcall_widget.sandbox import Sandbox
from webcall_widget.sandbox.config import SandboxConfig

pytestmark = pytest.mark.django_db(transaction=True)

# Two seconds of 16 kHz audio in one frame, so that megabytes go by in a moment: the
# kernel's own socket buffers, which no process can see into, hold several.
# Noise, not a repeated sample: the test's client and Uvicorn negotiate permessage-deflate,
# which squeezed a constant frame of 64 KB into a few bytes on the wire, so that megabytes
# of "audio" fitted in a few kilobytes of socket buffer and nothing ever backed up.
FRAME = random.Random(13).randbytes(64000)
FRAMES_SENT = 120


@pytest.fixture
def relay(sandbox: RunningSandbox, settings: Any) -> Iterator[ServerThread]:
    settings.WEBCALL_WIDGET = {**settings.WEBCALL_WIDGET, "MAX_FRAME_BYTES": len(FRAME)}
    from tests.asgi import application

    with ServerThread(application, name="relay") as server:
        yield server


@pytest.fixture
def loopback_agent(agent_factory: Any) -> Agent:
    """Echoes every audio frame at once: as much agent audio as the test sends."""
    return agent_factory(voicehub_agent_id="loopback-agent", default_mode="WebAudio")


def open_call(relay: ServerThread, agent: Agent, mode: str) -> tuple[str, str]:
    response = post_create_call(relay.url, agent.slug, mode)
    assert response.status_code == 201, response.text
    return response.json()["call"], response.json()["socket"]


async def slow_reader(socket_url: str, origin: str) -> ClientConnection:
    """A browser socket whose kernel buffer holds little, so that not reading shows."""
    parts = urlsplit(socket_url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
    return await connect(socket_url, sock=sock, origin=origin, max_queue=4)  # type: ignore[arg-type]


async def frames_until(ws: ClientConnection, kind: str) -> tuple[list[dict[str, Any]], int]:
    """The text frames up to the first of type ``kind``, and the audio bytes among them."""
    texts: list[dict[str, Any]] = []
    audio = 0
    while not texts or texts[-1]["type"] != kind:
        frame = await asyncio.wait_for(ws.recv(), 10)
        if isinstance(frame, bytes):
            audio += len(frame)
        else:
            texts.append(json.loads(frame))
    return texts, audio


async def relayed(call_id: str, size: int) -> None:
    """Wait until the relay (in this process) has handed ``size`` bytes of agent audio to
    the browser's socket, or dropped them. The kernel's buffers on the way from the
    sandbox hold megabytes, so the sandbox having sent them says little."""
    wanted = uuid.UUID(call_id)
    [bridge] = [b for b in lifecycle.registry.live_calls() if b.call_id == wanted]
    assert isinstance(bridge, Bridge)  # held by the server's thread, on its own event loop
    counters = bridge.counters
    while counters.audio_bytes_out + counters.audio_bytes_dropped_out < size:  # noqa: ASYNC110
        await asyncio.sleep(0.02)


async def send_frames(ws: ClientConnection, count: int) -> None:
    for _ in range(count):
        await ws.send(FRAME)
        await asyncio.sleep(0.015)  # within the frame budget (100 a second)


def test_a_browser_that_stops_reading_loses_old_agent_audio_and_is_told(relay, loopback_agent):
    call_id, socket_url = open_call(relay, loopback_agent, "WebAudio")

    async def visit() -> tuple[list[dict[str, Any]], int]:
        ws = await slow_reader(socket_url, relay.url)
        async with ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            ws.transport.pause_reading()
            await send_frames(ws, FRAMES_SENT)
            await relayed(call_id, FRAMES_SENT * len(FRAME))
            ws.transport.resume_reading()
            await ws.send(json.dumps({"type": "end"}))
            return await frames_until(ws, "ended")

    texts, heard = asyncio.run(asyncio.wait_for(visit(), 30))
    sent = FRAMES_SENT * len(FRAME)
    assert [t["code"] for t in texts if t["type"] == "error"] == ["connection_slow"]
    assert texts[-1] == {"type": "ended", "reason": "visitor-ended"}
    call = Call.objects.get(pk=call_id)
    assert call.audio_bytes_dropped_out > 0
    assert (call.audio_bytes_out, call.audio_bytes_dropped_out) == (heard, sent - heard)


def test_a_browser_that_keeps_up_loses_no_audio(relay, loopback_agent):
    call_id, socket_url = open_call(relay, loopback_agent, "WebAudio")

    async def visit() -> tuple[list[dict[str, Any]], int]:
        async with connect(socket_url, origin=relay.url) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            reader = asyncio.create_task(frames_until(ws, "ended"))
            await send_frames(ws, 20)
            await asyncio.sleep(0.5)
            await ws.send(json.dumps({"type": "end"}))
            return await reader

    texts, heard = asyncio.run(asyncio.wait_for(visit(), 30))
    assert [t for t in texts if t["type"] == "error"] == []
    assert heard == 20 * len(FRAME)
    call = Call.objects.get(pk=call_id)
    assert (call.audio_bytes_out, call.audio_bytes_dropped_out) == (heard, 0)


@pytest.fixture
def small_buffered_sandbox(relay: ServerThread, settings: Any) -> Iterator[RunningSandbox]:
    """A sandbox of its own whose sockets have a small kernel receive buffer."""
    app = Sandbox(SandboxConfig(word_delay=0.0))
    with ServerThread(app, name="sandbox-small-buffer", receive_buffer=4096) as server:
        upstream = {**settings.WEBCALL_WIDGET["UPSTREAM"], "URL": server.url}
        settings.WEBCALL_WIDGET = {**settings.WEBCALL_WIDGET, "UPSTREAM": upstream}
        yield RunningSandbox(app, server)


def test_visitor_audio_a_deaf_voicehub_cannot_take_is_dropped_and_messages_still_go(
    relay, small_buffered_sandbox, agent_factory
):
    sandbox = small_buffered_sandbox
    agent = agent_factory(default_mode="TextAudio")
    call_id, socket_url = open_call(relay, agent, "TextAudio")

    async def visit() -> list[dict[str, Any]]:
        async with connect(socket_url, origin=relay.url) as ws:
            texts, _ = await frames_until(ws, "message")  # ready, then the greeting
            assert texts[0]["type"] == "ready"
            sandbox.faults.deaf = True
            await send_frames(ws, FRAMES_SENT)
            told, _ = await frames_until(ws, "error")
            assert told[-1]["code"] == "upstream_slow"
            await ws.send(json.dumps({"type": "ping", "t": 1}))
            pong, _ = await frames_until(ws, "pong")  # the relay still reads the visitor
            await ws.send(json.dumps({"type": "text", "text": "can you hear me"}))
            sandbox.faults.deaf = False
            said = await frames_until_text(ws, "You said: can you hear me")
            await ws.send(json.dumps({"type": "end"}))
            end, _ = await frames_until(ws, "ended")
            return told + pong + said + end

    texts = asyncio.run(asyncio.wait_for(visit(), 30))
    assert texts[-1]["reason"] == "visitor-ended"
    call = Call.objects.get(pk=call_id)
    sent = FRAMES_SENT * len(FRAME)
    assert call.audio_bytes_dropped_in > 0
    assert call.audio_bytes_in + call.audio_bytes_dropped_in == sent
    # what could wait in the relay's own buffer is about a second of audio
    assert sandbox.state.audio_in[call.voicehub_call_id] <= sent - call.audio_bytes_dropped_in


async def frames_until_text(ws: ClientConnection, text: str) -> list[dict[str, Any]]:
    texts: list[dict[str, Any]] = []
    while not texts or texts[-1].get("text") != text:
        more, _ = await frames_until(ws, "message")
        texts += more
    return texts
