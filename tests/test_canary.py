"""The secret canary itself: it must see a leak wherever one could happen."""

from __future__ import annotations

import logging

import pytest

from tests import canary
from webcall_widget.sandbox.config import SANDBOX_API_KEY


@pytest.fixture
def expect_leak():
    """Let the test plant a leak, check the canary saw it, then forgive it."""
    before = len(canary.LEAKS)
    seen: list[str] = []
    yield seen
    seen.extend(canary.LEAKS[before:])
    del canary.LEAKS[before:]
    assert seen, "the canary missed a planted leak"


def test_keys_saved_on_agents_are_registered(agent_factory):
    agent_factory(api_key="sk-registered-by-saving")
    assert "sk-registered-by-saving" in canary.SECRETS


def test_a_key_in_a_log_record_is_caught(expect_leak):
    logging.getLogger("webcall_widget.test").error("oops %s", SANDBOX_API_KEY)


def test_a_key_in_a_response_is_caught(expect_leak, rf):
    from django.http import HttpResponse

    middleware = canary.SecretCanaryMiddleware(lambda request: HttpResponse(SANDBOX_API_KEY))
    middleware(rf.get("/"))


def test_a_key_in_a_relay_frame_is_caught(expect_leak):
    import asyncio

    from webcall_widget.relay.consumer import RelayConsumer

    consumer = RelayConsumer()

    async def swallow(message):
        pass

    consumer.base_send = swallow
    asyncio.run(consumer._send({"type": "websocket.send", "text": SANDBOX_API_KEY}))


def test_short_keys_are_not_registered_to_avoid_false_alarms():
    canary.register("k")
    assert "k" not in canary.SECRETS
