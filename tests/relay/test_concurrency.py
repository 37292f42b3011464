"""Many text calls at once through the relay on a real ASGI server: nothing lost or reordered."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Origin

from tests.servers import ServerThread, post_create_call
from webcall_widget.models import Call, CallStatus, TranscriptMessage

pytestmark = pytest.mark.django_db(transaction=True)

CALLS = 30
MESSAGES = 8


@pytest.fixture
def live_relay(sandbox, settings):
    settings.WEBCALL_WIDGET = {
        **settings.WEBCALL_WIDGET,
        "LIMITS": {
            "CALLS_PER_MINUTE_PER_CLIENT": 1000,
            "CALLS_PER_MINUTE_PER_AGENT": 1000,
            "CONCURRENT_CALLS_PER_AGENT": 1000,
            "UNCONNECTED_CALLS_PER_CLIENT": 1000,  # every call is created before any connects
        },
    }
    from tests.asgi import application

    with ServerThread(application, name="live-relay") as server:
        yield server


async def converse(socket_url: str, origin: str, call: int) -> list[str]:
    replies: list[str] = []
    async with connect(socket_url, origin=Origin(origin)) as ws:
        frame = json.loads(await ws.recv())
        assert frame["type"] == "ready"
        for n in range(MESSAGES):
            await ws.send(json.dumps({"type": "text", "text": f"call {call} message {n}"}))
        while len(replies) < MESSAGES:
            frame = json.loads(await ws.recv())
            if frame.get("role") == "agent" and frame.get("final") and "message" in frame["text"]:
                replies.append(frame["text"])
        await ws.send(json.dumps({"type": "end"}))
        while json.loads(await ws.recv())["type"] != "ended":
            pass
    return replies


def test_many_concurrent_calls_lose_and_reorder_nothing(live_relay, agent):
    def create() -> str:
        response = post_create_call(live_relay.url, agent.slug)
        assert response.status_code == 201, response.text
        return response.json()["socket"]

    sockets = [create() for _ in range(CALLS)]

    async def everyone() -> list[list[str]]:
        return await asyncio.wait_for(
            asyncio.gather(*(converse(url, live_relay.url, i) for i, url in enumerate(sockets))),
            timeout=45,
        )

    results = asyncio.run(everyone())
    for call, replies in enumerate(results):
        assert replies == [f"You said: call {call} message {n}" for n in range(MESSAGES)]
    assert Call.objects.filter(status=CallStatus.ENDED).count() == CALLS
    for ended in Call.objects.all():
        visitor = list(
            TranscriptMessage.objects.filter(call=ended, role="user").values_list(
                "text", flat=True
            )
        )
        number = visitor[0].split()[1]
        assert visitor == [f"call {number} message {n}" for n in range(MESSAGES)]
