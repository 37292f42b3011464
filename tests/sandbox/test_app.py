"""The sandbox's ASGI app at its edges: its prefix, the lifespan protocol, and sockets it
refuses or cannot read (over real sockets, against the running variants)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import MutableMapping
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from webcall_widget.sandbox import Sandbox
from webcall_widget.voicehub.errors import UpstreamConnectFailed
from webcall_widget.voicehub.opening import open_session
from webcall_widget.voicehub.profile_settings import build_profile


def test_a_prefix_must_start_and_end_with_a_slash():
    with pytest.raises(ValueError, match="prefix must start and end with '/'"):
        Sandbox(prefix="voicehub")


async def test_the_sandbox_starts_and_stops_under_the_lifespan_protocol():
    """As Uvicorn runs it alone (``python -m webcall_widget.sandbox``)."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    for kind in ("lifespan.startup", "lifespan.shutdown"):
        inbox.put_nowait({"type": kind})
    await asyncio.wait_for(Sandbox()({"type": "lifespan"}, inbox.get, send), 5)
    assert sent == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
    ]


async def test_a_plain_websocket_without_a_calls_credentials_is_refused(variant_sandbox, caplog):
    sandbox = variant_sandbox("auth-query-websocket")
    with (
        caplog.at_level(logging.INFO, "webcall_widget.sandbox"),
        pytest.raises(InvalidStatus),
    ):
        async with connect(f"{sandbox.server.ws_url}/ws", open_timeout=5):
            pass
    assert "Sandbox refused a socket: unauthorized" in caplog.text


async def test_a_plain_websocket_frame_that_is_not_a_json_event_is_answered_with_an_error(
    variant_sandbox,
):
    sandbox = variant_sandbox("websocket")
    async with connect(f"{sandbox.server.ws_url}/ws", open_timeout=5) as ws:
        for frame in ("not json", json.dumps(["an", "array"]), json.dumps({"data": 1})):
            await ws.send(frame)
            answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert answer == {
                "event": "error",
                "data": {"message": "frames must be JSON objects with an event"},
            }


async def test_a_namespace_no_call_has_is_refused(variant_sandbox):
    sandbox = variant_sandbox("namespace")
    with pytest.raises(UpstreamConnectFailed, match="no call has the namespace '/webcall/nobody'"):
        await open_session(
            base_url=sandbox.url,
            socket_path="/webcall/nobody",
            profile=build_profile({"SOCKET_PATH_AS": "namespace"}),
            connect_timeout=5,
        )
