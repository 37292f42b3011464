from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from websockets.asyncio.server import serve

from tests.voicehub.peers import Handler


@pytest.fixture
async def peer() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """A hand-written upstream on a real port, for behaviour the sandbox never shows."""
    servers = []

    async def run(handler: Handler) -> str:
        server = await serve(handler, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield run
    for server in servers:
        server.close()
        await server.wait_closed()
