"""Whether a browser socket may hold a call: the rules the create-call view applies, again
for the socket, which may come from anywhere.

Each check answers a :data:`Refusal` (the close code, and the error code the visitor is
told first) or lets the socket through. No I/O but the call's row.
"""

from __future__ import annotations

import logging
from typing import Any

from webcall_widget import access, origins
from webcall_widget.conf import Settings
from webcall_widget.models import Access
from webcall_widget.relay import records
from webcall_widget.relay.lifecycle import Registry
from webcall_widget.relay.protocol import CloseCode

logger = logging.getLogger("webcall_widget.relay")

Refusal = tuple[CloseCode, str]


def origin_of(scope: dict[str, Any]) -> str:
    """The socket's Origin header; "" when it sent none."""
    headers = dict(scope.get("headers", []))
    return headers.get(b"origin", b"").decode("latin-1")


async def load(
    scope: dict[str, Any], call_id: Any, settings: Settings
) -> records.CallInfo | Refusal:
    """The call, if this socket may hold it."""
    call = await records.aload_call(call_id, settings)
    if call is None:
        return CloseCode.UNKNOWN_CALL, "unknown_call"
    if not call.agent_active:
        return CloseCode.AGENT_DISABLED, "agent_disabled"
    headers = dict(scope.get("headers", []))
    origin = origin_of(scope) or None
    host = headers.get(b"host", b"").decode("latin-1")
    if not origins.is_allowed(origin, host, list(call.agent_origins)):
        logger.warning("Call %s: socket from origin %s refused.", call.call_id, origin)
        return CloseCode.ORIGIN_NOT_ALLOWED, "origin_not_allowed"
    refused = _access_refused(scope, call)
    return call if refused is None else refused


def _access_refused(scope: dict[str, Any], call: records.CallInfo) -> Refusal | None:
    """The create-call view's rule, for the user holding the socket."""
    user = scope.get("user")
    if user is None and call.access != Access.ANYONE:
        logger.error(
            "Call %s: the agent needs logged-in users, but the socket has no user; "
            "wrap the websocket routes in channels.auth.AuthMiddlewareStack.",
            call.call_id,
        )
    refused = access.call_refusal(call.access, user, call.user_id)
    return None if refused is None else (CloseCode.ACCESS_DENIED, refused)


def at_capacity(calls: Registry, settings: Settings) -> bool:
    """Whether this process relays as many voice calls as it can without delaying their
    audio (``LIMITS.VOICE_CALLS_PER_PROCESS``)."""
    capacity = settings.limits.voice_calls_per_process
    if calls.voice_calls() < capacity:
        return False
    logger.warning(
        "A voice call was refused: this process relays %d already "
        "(LIMITS.VOICE_CALLS_PER_PROCESS); add processes or raise it.",
        capacity,
    )
    return True
