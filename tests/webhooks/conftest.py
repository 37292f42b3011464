from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from webcall_widget.models import Agent
from webcall_widget.webhooks.worker import fetcher

SECRET = "whsec-0123456789abcdef"


@pytest.fixture
def hooked_agent(agent_factory: Callable[..., Agent]) -> Agent:
    """An agent whose webhook secret is ``SECRET``."""
    return agent_factory(webhook_secret=SECRET)


def post_event(
    client: Any, agent: Agent, payload: dict[str, Any] | bytes, *, secret: str | None = SECRET
) -> Any:
    headers = {} if secret is None else {"x-webhook-secret": secret}
    body = payload if isinstance(payload, bytes) else json.dumps(payload)
    return client.post(
        f"/webcall/agents/{agent.slug}/webhook",
        data=body,
        content_type="application/json",
        headers=headers,
    )


def status_event(call_id: str, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "eventType": "CallStatusChanged",
        "eventId": uuid.uuid4().hex,
        "timestamp": "2026-05-01T10:00:00.000Z",
        "status": status,
        "callId": call_id,
        **fields,
    }


@pytest.fixture
def fetches(sandbox: Any, settings: Any) -> Iterator[None]:
    """The sandbox as upstream; analysis fetches retry fast, and the test ends after they
    are done (before its database and sandbox are torn down)."""
    raw = dict(settings.WEBCALL_WIDGET)
    raw["WEBHOOKS"] = {"ANALYSIS_RETRY_DELAY": 0.01, "ANALYSIS_TIMEOUT": 5.0}
    settings.WEBCALL_WIDGET = raw
    yield
    assert fetcher.wait_idle(timeout=30)


def wait_for_fetches() -> None:
    assert fetcher.wait_idle(timeout=30), "analysis fetches did not finish"
