"""The sandbox as one ASGI application, and the helper that mounts it on a Django site.

Under its prefix (``/`` when it runs alone) it serves:

* ``calls/public/create-web-call``: see :mod:`webcall_widget.sandbox.http`;
* ``socket.io/``: the WebCall socket over Socket.IO (python-socketio, a real
  implementation, so the relay's own client is checked against it);
* ``ws/``: the same socket as a plain WebSocket with ``{"event", "data"}`` frames.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import socketio

from webcall_widget.sandbox.agent import Conversation
from webcall_widget.sandbox.config import SandboxConfig
from webcall_widget.sandbox.http import CreateWebCall, Receive, Scope, Send, respond_error
from webcall_widget.sandbox.state import SandboxState, Wire
from webcall_widget.voicehub.events import CREATE_WEB_CALL_PATH, EventNames, Transport

logger = logging.getLogger(__name__)

_WIRE = "webcall_widget.sandbox.wire"  # the socket's Wire, in the ASGI scope


class Sandbox:
    """A VoiceHub emulator serving under ``prefix`` (which starts and ends with ``/``)."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        prefix: str = "/",
        transport: Transport = Transport.SOCKETIO,
        names: EventNames | None = None,
    ) -> None:
        if not (prefix.startswith("/") and prefix.endswith("/")):
            raise ValueError("prefix must start and end with '/'")
        self.config = config or SandboxConfig()
        self.prefix = prefix
        self.transport = transport
        self.names = names or EventNames()
        self.state = SandboxState()
        self.socketio_path = prefix + "socket.io"
        self.websocket_path = prefix + "ws"
        socket_path = (
            self.socketio_path if transport is Transport.SOCKETIO else self.websocket_path
        )
        self._create = CreateWebCall(self.config, self.state, socket_path)
        self._create_path = prefix.rstrip("/") + CREATE_WEB_CALL_PATH
        self._sio = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins="*",
            async_handlers=False,
            max_http_buffer_size=1 << 20,
            ping_interval=self.config.ping_interval,
            ping_timeout=self.config.ping_timeout,
            logger=False,
            engineio_logger=False,
        )
        self._socketio_app = socketio.ASGIApp(self._sio, socketio_path=self.socketio_path)
        self._conversations: dict[str, Conversation] = {}
        self._sio.on("connect", self._sio_connect)
        self._sio.on("disconnect", self._sio_disconnect)
        self._sio.on("*", self._sio_event)

    def handles(self, path: str) -> bool:
        return path.startswith(self.prefix)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind, path = scope["type"], scope.get("path", "")
        if kind == "lifespan":
            await _lifespan(receive, send)
        elif path.startswith(self.socketio_path):
            wire = Wire()
            scope = {**scope, _WIRE: wire}
            await self._socketio_app(scope, receive, self._faulty(send, wire))
        elif kind == "http" and path == self._create_path:
            await self._create(scope, receive, send)
        elif kind == "websocket" and path.rstrip("/") == self.websocket_path:
            wire = Wire()
            await self._websocket(receive, self._faulty(send, wire), wire)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        elif kind == "http":
            await respond_error(send, 404, f"Cannot {scope['method']} {path}")

    def _faulty(self, send: Send, wire: Wire) -> Send:
        """``send`` for a socket, obeying the stall and corruption switches."""
        faults = self.state.faults

        async def send_with_faults(message: Any) -> None:
            # A frozen network: nothing leaves, not even a close. Polled, because tests
            # flip the switch from another thread.
            while faults.stall:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            if message["type"] == "websocket.send" and wire.corrupt_next_frame:
                wire.corrupt_next_frame = False
                message = {"type": "websocket.send", "text": "42[not json"}
            await send(message)

        return send_with_faults

    def _conversation(self, emit: Any, disconnect: Any, wire: Wire) -> Conversation:
        self.state.count_connection(opened=True)
        return Conversation(
            config=self.config,
            state=self.state,
            names=self.names,
            emit=emit,
            disconnect=disconnect,
            wire=wire,
        )

    # Socket.IO

    async def _sio_connect(self, sid: str, environ: Any, auth: Any = None) -> None:
        if self.state.faults.refuse_socket:
            raise socketio.exceptions.ConnectionRefusedError("refused by the sandbox")

        async def emit(name: str, data: Any) -> None:
            await self._sio.emit(name, data, to=sid)

        async def disconnect() -> None:
            await self._sio.disconnect(sid)

        # A polling transport has no socket of its own to corrupt.
        wire = environ.get("asgi.scope", {}).get(_WIRE) or Wire()
        self._conversations[sid] = self._conversation(emit, disconnect, wire)

    async def _sio_disconnect(self, sid: str, reason: Any = None) -> None:
        conversation = self._conversations.pop(sid, None)
        if conversation is not None:
            await conversation.closed()

    async def _sio_event(self, event: str, sid: str, data: Any = None, *rest: Any) -> None:
        conversation = self._conversations.get(sid)
        if conversation is not None:
            conversation.feed(event, data)

    # plain WebSocket

    async def _websocket(self, receive: Receive, send: Send, wire: Wire) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        closed = False

        async def emit(name: str, data: Any) -> None:
            if closed:
                return
            if isinstance(data, bytes):
                await send({"type": "websocket.send", "bytes": data})
            else:
                text = json.dumps({"event": name, "data": data})
                await send({"type": "websocket.send", "text": text})

        async def disconnect() -> None:
            nonlocal closed
            if not closed:
                closed = True
                await send({"type": "websocket.close", "code": 1000})

        conversation = self._conversation(emit, disconnect, wire)
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("bytes") is not None:
                    conversation.feed(self.names.audio_chunk, message["bytes"])
                    continue
                try:
                    frame = json.loads(message.get("text") or "")
                    conversation.feed(str(frame["event"]), frame.get("data"))
                except (ValueError, KeyError, TypeError):
                    await conversation.error("frames must be JSON objects with an event")
        finally:
            closed = True
            await conversation.closed()


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


_mounted: Sandbox | None = None


def mounted_sandbox() -> Sandbox:
    """The sandbox this process serves on the Django site, built from settings."""
    global _mounted
    from webcall_widget.conf import get_settings

    settings = get_settings()
    wanted = (settings.sandbox.path, settings.upstream.audio, settings.upstream.transport)
    if _mounted is None or (_mounted.prefix, _mounted.config.audio, _mounted.transport) != wanted:
        _mounted = Sandbox(
            SandboxConfig(audio=settings.upstream.audio),
            prefix=settings.sandbox.path,
            transport=settings.upstream.transport,
            names=settings.upstream.events,
        )
    return _mounted


def mount_sandbox(application: Any) -> Any:
    """Wrap a site's ASGI application so that the sandbox answers under its path.

    The sandbox answers only while ``WEBCALL_WIDGET["SANDBOX"]["ENABLED"]`` is true (by
    default: while ``DEBUG`` is on); otherwise every request goes to ``application``.
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            from webcall_widget.conf import get_settings

            settings = get_settings()
            if settings.sandbox.enabled and scope["path"].startswith(settings.sandbox.path):
                await mounted_sandbox()(scope, receive, send)
                return
        await application(scope, receive, send)

    return app
