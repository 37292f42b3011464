"""The whole stack on a real ASGI server: the site composed as a user composes it, with the
sandbox mounted on it as the default upstream, driven by real HTTP and WebSocket clients."""

from __future__ import annotations

import asyncio
import json

import pytest
import requests
from websockets.asyncio.client import connect

from tests.servers import ServerThread, post_create_call

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_site(settings):
    settings.WEBCALL_WIDGET = {"SANDBOX": {"ENABLED": True}}
    from tests.asgi import application

    with ServerThread(application, name="live-site") as server:
        yield server


def test_mounted_sandbox_is_the_default_upstream(live_site, agent):
    response = post_create_call(live_site.url, agent.slug)
    assert response.status_code == 201, response.text
    socket_url = response.json()["socket"]
    assert socket_url.startswith(f"{live_site.ws_url}/ws/webcall/")

    async def converse() -> list[dict]:
        frames = []
        async with connect(socket_url, origin=live_site.url) as ws:
            frames.append(json.loads(await ws.recv()))  # ready
            frames.append(json.loads(await ws.recv()))  # greeting
            await ws.send(json.dumps({"type": "text", "text": "over the wire"}))
            while not (
                frames[-1].get("role") == "agent"
                and frames[-1].get("final")
                and frames[-1]["text"].startswith("You said")
            ):
                frames.append(json.loads(await ws.recv()))
            await ws.send(json.dumps({"type": "end"}))
            frames.append(json.loads(await ws.recv()))
            await ws.wait_closed()
            assert ws.close_code == 1000
        return frames

    frames = asyncio.run(asyncio.wait_for(converse(), 15))
    assert frames[0]["type"] == "ready"
    assert frames[-2]["text"] == "You said: over the wire"
    assert frames[-1] == {"type": "ended", "reason": "visitor-ended"}


def test_sandbox_is_not_served_when_disabled(live_site, settings):
    settings.WEBCALL_WIDGET = {"SANDBOX": {"ENABLED": False}}
    response = requests.post(
        f"{live_site.url}/voicehub-sandbox/calls/public/create-web-call", timeout=5
    )
    assert response.status_code == 404
    assert "statusCode" not in response.text  # Django's 404, not the sandbox's
