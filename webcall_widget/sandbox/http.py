"""The sandbox's ``POST /calls/public/create-web-call``, as a plain ASGI handler.

Answers like VoiceHub is documented to: 201 with ``callId`` and ``webCallSocketPath``;
400 misconfigured agent, 401 invalid API key, 403 insufficient credits, 405 operation
not allowed; CORS open to every origin. Error bodies follow NestJS's shape, since the
real body is undocumented.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from webcall_widget.sandbox.config import SandboxConfig
from webcall_widget.sandbox.state import SandboxCall, SandboxState

if TYPE_CHECKING:
    from webcall_widget.sandbox.webhooks import WebhookSender
from webcall_widget.voicehub.events import HEADER_AGENT_ID, HEADER_API_KEY, Mode

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

MAX_BODY = 16 * 1024
CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"POST"),
    (
        b"access-control-allow-headers",
        b"Content-Type, Authorization, voicehub-agent-id, x-api-access-key",
    ),
]
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class CreateWebCall:
    def __init__(
        self,
        config: SandboxConfig,
        state: SandboxState,
        socket_path: str,
        *,
        prefix: str = "/",
        webhooks: WebhookSender | None = None,
        socket_path_for: Callable[[SandboxCall], str] | None = None,
    ) -> None:
        self.config = config
        self.state = state
        self.socket_path = socket_path
        self.prefix = prefix
        self.webhooks = webhooks
        # webCallSocketPath per call (a namespace or a URL); None: socket_path for all
        self.socket_path_for = socket_path_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method == "OPTIONS":
            await respond(send, 204, b"")
            return
        if method != "POST":
            await respond_error(send, 404, f"Cannot {method} {scope['path']}")
            return
        body = await read_body(receive, MAX_BODY)
        if body is None:
            await respond_error(send, 413, "request body too large")
            return
        faults = self.state.faults
        if faults.create_delay:
            await asyncio.sleep(faults.create_delay)
        if faults.create_status is not None:
            await respond_error(send, faults.create_status, "injected fault")
            return
        if faults.create_body is not None:
            await respond(send, 201, faults.create_body)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        status, payload = self.create(
            headers.get(HEADER_API_KEY, ""), headers.get(HEADER_AGENT_ID, ""), body
        )
        if status != 201:
            await respond_error(send, status, payload["message"])
            return
        call = self.state.calls[payload["callId"]]
        call.site = _site(scope, headers)
        call.base_url = call.site + self.prefix
        if self.socket_path_for is not None:
            payload["webCallSocketPath"] = self.socket_path_for(call)
        if self.webhooks is not None:
            self.webhooks.created(call)
        await respond(send, 201, json.dumps(payload).encode())

    def create(self, api_key: str, agent_id: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if api_key not in self.config.api_keys:
            return 401, {"message": "Invalid API key"}
        agent = self.config.agents.get(agent_id)
        if agent is None:
            return 400, {"message": f"Agent {agent_id!r} not found"}
        if agent.misconfigured:
            return 400, {"message": "Agent is not configured for web calls"}
        try:
            data = json.loads(body)
            mode = Mode(data["type"])
        except (ValueError, KeyError, TypeError):
            return 400, {"message": "type must be one of text, WebAudio, TextAudio"}
        if mode not in agent.modes:
            return 405, {"message": f"{mode.value} calls are not allowed for this agent"}
        credits = self.config.api_keys[api_key]
        used = sum(1 for c in self.state.calls.values() if c.api_key == api_key)
        if credits is not None and used >= credits:
            return 403, {"message": "Insufficient credits"}
        call_id = uuid.uuid4().hex
        self.state.add_call(SandboxCall(call_id, agent_id, mode, api_key))
        return 201, {"callId": call_id, "webCallSocketPath": self.socket_path}


def _site(scope: Scope, headers: dict[str, str]) -> str:
    """``scheme://host[:port]`` as the caller reached the sandbox."""
    host = headers.get("host")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None if it is longer than ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def respond(send: Send, status: int, body: bytes) -> None:
    headers = [*CORS_HEADERS, (b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def respond_error(send: Send, status: int, message: str) -> None:
    body = {"statusCode": status, "message": message, "error": _REASONS.get(status, "Error")}
    await respond(send, status, json.dumps(body).encode())
