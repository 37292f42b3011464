"""A hand-written upstream (the ``peer`` fixture, tests/voicehub/conftest.py), for
behaviour the sandbox never shows, and the session that talks to it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import ServerConnection

from webcall_widget.voicehub.events import EventNames, Transport
from webcall_widget.voicehub.opening import open_session
from webcall_widget.voicehub.session import UpstreamSession

Handler = Callable[[ServerConnection], Awaitable[None]]

# Engine.IO's open packet, with a heartbeat of 0.2 + 0.2 s.
OPEN = '0{"sid":"s","upgrades":[],"pingInterval":200,"pingTimeout":200,"maxPayload":100000}'


async def open_peer(
    url: str,
    connect_timeout: float = 2,
    *,
    transport: Transport = Transport.SOCKETIO,
    socket_path: str = "/socket.io",
    **options: Any,
) -> UpstreamSession:
    return await open_session(
        base_url=url,
        socket_path=socket_path,
        transport=transport,
        names=EventNames(),
        connect_timeout=connect_timeout,
        **options,
    )
