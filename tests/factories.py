"""Agents as the tests make them: valid, on the sandbox's echo agent, each with a slug of
its own; a test names only the fields it is about."""

from __future__ import annotations

import itertools
from typing import Any

from webcall_widget.models import Agent
from webcall_widget.sandbox.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY
from webcall_widget.voicehub.events import Mode

_numbers = itertools.count(1)


def build_agent(**overrides: Any) -> Agent:
    """An agent not saved yet (to validate, or to save); ``overrides`` win."""
    number = next(_numbers)
    fields: dict[str, Any] = {
        "name": f"Agent {number}",
        "slug": f"agent-{number}",
        "voicehub_agent_id": SANDBOX_AGENT_ID,
        "api_key": SANDBOX_API_KEY,
        "modes": [m.value for m in Mode],
        "default_mode": Mode.TEXT.value,
    }
    return Agent(**{**fields, **overrides})
