"""Whether the sandbox lets a socket in: what its profile's connection templates ask for.

A real VoiceHub that wants credentials on the socket checks them against its calls. The
sandbox does the same with ``CONNECT_AUTH`` / ``CONNECT_QUERY`` / ``CONNECT_HEADERS``
of the profile it speaks: the opening must carry, for some call it created, every
template value filled in with that call's id, agent id and API key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from webcall_widget.sandbox.state import SandboxCall
from webcall_widget.voicehub.profile import ConnectTemplate, render


def refusal(
    template: ConnectTemplate,
    calls: Iterable[SandboxCall],
    *,
    auth: Any,
    query: Mapping[str, str],
    headers: Mapping[str, str],
) -> str | None:
    """Why a socket with this opening is refused, or None to let it in."""
    if template.is_empty:
        return None
    lowered = {name.lower(): value for name, value in headers.items()}
    for call in calls:
        values = {"callId": call.call_id, "agentId": call.agent_id, "apiKey": call.api_key}
        if (
            _carries(auth, render(template.auth, values) if template.auth is not None else {})
            and _carries(query, render(dict(template.query), values))
            and _carries(
                lowered, {k.lower(): v for k, v in render(dict(template.headers), values).items()}
            )
        ):
            return None
    wanted = [
        f"{where} {sorted(part)}"
        for where, part in (
            ("CONNECT auth", template.auth or {}),
            ("query", template.query),
            ("headers", template.headers),
        )
        if part
    ]
    return "unauthorized: this socket needs " + " and ".join(wanted) + " of a call"


def _carries(given: Any, expected: Mapping[str, Any]) -> bool:
    if not expected:
        return True
    if not isinstance(given, Mapping):
        return False
    return all(str(given.get(key)) == str(value) for key, value in expected.items())
