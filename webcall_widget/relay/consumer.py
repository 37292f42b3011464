"""The Channels consumer at ``<SOCKET_PATH><token>/``: a thin adapter around the bridge.

It accepts first and checks afterwards, so that the browser receives our 44xx close
codes (a close before accept reaches the browser as 1006): token (4401 invalid or
expired, 4409 already used), call (4404), agent (4503 disabled), origin and access
(4403). Then it starts the :class:`~webcall_widget.relay.bridge.Bridge`, feeds it parsed
frames within the frame budget (4429 beyond), and listens on the call's channel-layer
group, so that "end this call" reaches it from any process.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from webcall_widget import origins
from webcall_widget.conf import get_settings
from webcall_widget.models import Access
from webcall_widget.relay import protocol, records, tokens
from webcall_widget.relay.bridge import Bridge
from webcall_widget.relay.control import call_group
from webcall_widget.relay.protocol import CloseCode, ProtocolError
from webcall_widget.relay.throttle import FrameBudget
from webcall_widget.strings import ERRORS
from webcall_widget.voicehub.events import Mode

logger = logging.getLogger("webcall_widget.relay")

aclaim = database_sync_to_async(tokens.claim)


class RelayConsumer(AsyncWebsocketConsumer):
    bridge: Bridge | None = None
    budget: FrameBudget | None = None
    group: str | None = None
    _closed = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Normally a no-op (disconnect() ended the call). When the server cancels this
            # consumer instead, the bridge's task and upstream socket must not outlive it.
            await self._leave_group()
            if self.bridge is not None:
                await self.bridge.abandon()

    async def connect(self) -> None:
        await self.accept()
        self.settings = get_settings()
        refusal = await self._authorise()
        if refusal is not None:
            code, error, message = refusal
            await self.send_text(protocol.error_frame(error, message))
            await self.close(code)
            return
        assert self.bridge is not None
        if self.channel_layer is not None:
            self.group = call_group(self.bridge.call.call_id)
            await self.channel_layer.group_add(self.group, self.channel_name)
        rate = self.settings.limits.frames_per_second
        self.budget = FrameBudget(rate=rate, burst=2 * rate)
        self.bridge.start()

    async def _authorise(self) -> tuple[CloseCode, str, str] | None:
        token = self.scope["url_route"]["kwargs"].get("token", "")
        try:
            call_id = tokens.read(token, max_age=self.settings.connect_token_max_age)
        except tokens.TokenError as exc:
            return CloseCode.BAD_TOKEN, "bad_token", f"{str(exc).capitalize()}."
        call = await records.aload_call(call_id, self.settings)
        if call is None:
            return CloseCode.UNKNOWN_CALL, "unknown_call", "This call does not exist."
        if not call.agent_active:
            return CloseCode.AGENT_DISABLED, "agent_disabled", "This assistant is unavailable."
        headers = dict(self.scope.get("headers", []))
        origin = headers.get(b"origin", b"").decode("latin-1") or None
        host = headers.get(b"host", b"").decode("latin-1")
        if not origins.is_allowed(origin, host, list(call.agent_origins)):
            logger.warning("Call %s: socket from origin %s refused.", call.call_id, origin)
            return (
                CloseCode.ORIGIN_NOT_ALLOWED,
                "origin_not_allowed",
                "This site may not use this assistant.",
            )
        refused = self._access_refused(call)
        if refused is not None:
            return refused
        if not await aclaim(call_id):
            return CloseCode.TOKEN_USED, "token_used", "This call was already connected."
        self.bridge = Bridge(call, self, self.settings)
        return None

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections (a thread hop) before every handler
        # (channels 4.2.0 release notes). Frames from the browser never touch the ORM here:
        # the bridge's writes go through database_sync_to_async, which does that itself.
        # So audio frames skip the hop; every other event keeps it.
        if message["type"] == "websocket.receive":
            await self.websocket_receive(message)
            return
        await super().dispatch(message)

    def _access_refused(self, call: records.CallInfo) -> tuple[CloseCode, str, str] | None:
        """The same rule as the create-call view, for the user holding the socket."""
        if call.access == Access.ANYONE:
            return None
        user = self.scope.get("user")
        if user is None:
            logger.error(
                "Call %s: the agent needs logged-in users, but the socket has no user; "
                "wrap the websocket routes in channels.auth.AuthMiddlewareStack.",
                call.call_id,
            )
        if user is None or not user.is_authenticated or user.pk != call.user_id:
            return CloseCode.ORIGIN_NOT_ALLOWED, "login_required", "Please log in first."
        if call.access == Access.STAFF and not user.is_staff:
            return CloseCode.ORIGIN_NOT_ALLOWED, "staff_only", "This assistant is for staff."
        return None

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        bridge = self.bridge
        if bridge is None or self._closed:
            return
        if self.budget is not None and not self.budget.take():
            await self.send_text(protocol.error_frame("rate_limited", str(ERRORS["rate_limited"])))
            await bridge.end("frame-rate-limit", close_code=CloseCode.RATE_LIMITED)
            return
        try:
            frame = protocol.parse(
                text_data,
                bytes_data,
                mode=Mode(bridge.call.mode),
                max_text_length=self.settings.max_text_length,
                max_frame_bytes=self.settings.max_frame_bytes,
            )
            if isinstance(frame, protocol.Ping):
                await self.send_text(protocol.pong_frame(frame.t))
                return
            await bridge.handle(frame)
        except ProtocolError as exc:
            await self.send_text(protocol.error_frame(exc.code, exc.message))
            if exc.close_code is not None:
                await bridge.end(exc.code.replace("_", "-"), close_code=exc.close_code)

    async def disconnect(self, code: int) -> None:
        self._closed = True
        await self._leave_group()
        if self.bridge is not None:
            await self.bridge.visitor_gone()

    async def _leave_group(self) -> None:
        if self.group is not None and self.channel_layer is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None

    async def webcall_end(self, event: dict[str, Any]) -> None:
        """A ``webcall.end`` message on the call's group: staff ended the call."""
        if self.bridge is not None:
            await self.bridge.end("ended-by-staff", visitor_message=str(ERRORS["ended_by_staff"]))

    # The bridge's view of the browser.

    async def send_text(self, frame: str) -> None:
        if not self._closed:
            await self._send({"type": "websocket.send", "text": frame})

    async def send_bytes(self, data: bytes) -> None:
        if not self._closed:
            await self._send({"type": "websocket.send", "bytes": data})

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        if not self._closed:
            self._closed = True
            await self._send({"type": "websocket.close", "code": int(code or 1000)})

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await self.base_send(message)
        except OSError:
            # ASGI servers raise an OSError subclass once the client is gone.
            self._closed = True
