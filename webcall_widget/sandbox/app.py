"""The sandbox as one ASGI application, and the helper that mounts it on a Django site.

Under its prefix (``/`` when it runs alone) it serves:

* ``calls/public/create-web-call``: see :mod:`webcall_widget.sandbox.http`;
* ``socket.io/``: the WebCall socket over Socket.IO (python-socketio, a real
  implementation, so the relay's own client is checked against it);
* ``ws/``: the same socket as a plain WebSocket with ``{"event", "data"}`` frames;
* ``analysis/<id>`` and ``recordings/<callId>.wav``: what its call webhooks point to
  (:mod:`webcall_widget.sandbox.webhooks`, :mod:`webcall_widget.sandbox.results`).

It speaks the protocol variant its :attr:`SandboxConfig.profile` describes (the same
value the relay's ``WEBCALL_WIDGET["UPSTREAM"]`` settings build; see
:mod:`~webcall_widget.sandbox.variants`): ``webCallSocketPath`` as a path, a namespace
(``/webcall/<callId>`` on ``socket.io/``) or a full URL; the credentials the connection
must carry; the join confirmed by an event or an acknowledgement; and what the
:class:`~webcall_widget.sandbox.agent.Conversation` says, in the profile's shapes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from typing import Any
from urllib.parse import parse_qsl

import socketio

from webcall_widget.conf import get_settings
from webcall_widget.sandbox import admission
from webcall_widget.sandbox.agent import Conversation
from webcall_widget.sandbox.config import SandboxConfig
from webcall_widget.sandbox.http import CreateWebCall, Receive, Scope, Send, respond_error
from webcall_widget.sandbox.results import Results
from webcall_widget.sandbox.state import SandboxCall, SandboxState, Wire
from webcall_widget.sandbox.webhooks import WebhookSender
from webcall_widget.voicehub.events import CREATE_WEB_CALL_PATH, EventNames, Transport
from webcall_widget.voicehub.profile import SocketPathAs, with_overrides

logger = logging.getLogger(__name__)

_WIRE = "webcall_widget.sandbox.wire"  # the socket's Wire, in the ASGI scope


class Sandbox:
    """A VoiceHub emulator serving under ``prefix`` (which starts and ends with ``/``)."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        prefix: str = "/",
        transport: Transport | None = None,
        names: EventNames | None = None,
    ) -> None:
        """``transport`` and ``names`` override those of ``config.profile``."""
        if not (prefix.startswith("/") and prefix.endswith("/")):
            raise ValueError("prefix must start and end with '/'")
        self.config = _overridden(config or SandboxConfig(), transport, names)
        self.profile = self.config.profile
        self.prefix = prefix
        self.transport = self.profile.transport
        self.names = self.profile.events
        self.state = SandboxState()
        self.socketio_path = prefix + "socket.io"
        self.websocket_path = prefix + "ws"
        socket_path = (
            self.socketio_path if self.transport is Transport.SOCKETIO else self.websocket_path
        )
        self.socket_path = socket_path
        self.webhooks = WebhookSender(self.config, self.state)
        self._create = CreateWebCall(
            self.config,
            self.state,
            socket_path,
            prefix=prefix,
            webhooks=self.webhooks,
            socket_path_for=self._socket_path_for,
        )
        self._results = Results(self.config, self.state, prefix)
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
            namespaces="*",  # which ones are let in is decided on connect
        )
        self._socketio_app = socketio.ASGIApp(self._sio, socketio_path=self.socketio_path)
        self._conversations: dict[str, Conversation] = {}
        self._sio.on("connect", self._sio_connect, namespace="*")
        self._sio.on("disconnect", self._sio_disconnect, namespace="*")
        self._sio.on("*", self._sio_event, namespace="*")

    def _socket_path_for(self, call: SandboxCall) -> str:
        """``webCallSocketPath`` for a new call, as the profile reads it."""
        if self.profile.socket_path_as is SocketPathAs.NAMESPACE:
            return f"/webcall/{call.call_id}"
        if self.profile.socket_path_as is SocketPathAs.URL:
            site = call.site.replace("https://", "wss://").replace("http://", "ws://")
            return f"{site}{self.socket_path}?call={call.call_id}"
        return self.socket_path

    def _refusal(
        self, namespace: str, auth: Any, query: str, headers: dict[str, str]
    ) -> str | None:
        """Why a socket opening is refused (namespace, credentials), or None."""
        if self.profile.socket_path_as is SocketPathAs.NAMESPACE:
            call_id = namespace.removeprefix("/webcall/")
            if namespace == call_id or call_id not in self.state.calls:
                return f"no call has the namespace {namespace!r}"
        elif namespace != "/":
            return f"unknown namespace {namespace!r}"
        return admission.refusal(
            self.profile.connect,
            list(self.state.calls.values()),
            auth=auth,
            query=dict(parse_qsl(query)),
            headers=headers,
        )

    def handles(self, path: str) -> bool:
        return path.startswith(self.prefix)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind, path = scope["type"], scope.get("path", "")
        if kind == "lifespan":
            await _lifespan(receive, send)
        elif path.startswith(self.socketio_path):
            wire = Wire()
            scope = {**scope, _WIRE: wire}
            await self._socketio_app(scope, self._deafened(receive), self._faulty(send, wire))
        elif kind == "http" and path == self._create_path:
            await self._create(scope, receive, send)
        elif kind == "http" and self._results.handles(path):
            await self._results(scope, receive, send)
        elif kind == "websocket" and path.rstrip("/") == self.websocket_path:
            wire = Wire()
            await self._websocket(scope, self._deafened(receive), self._faulty(send, wire), wire)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        elif kind == "http":
            await respond_error(send, 404, f"Cannot {scope['method']} {path}")

    def _deafened(self, receive: Receive) -> Receive:
        """``receive`` for a socket, obeying the deaf switch: while it is on, nothing more
        is read, and the ASGI server stops reading the socket (a VoiceHub slower than the
        audio it is sent)."""
        faults = self.state.faults

        async def receive_unless_deaf() -> Any:
            while faults.deaf:  # noqa: ASYNC110 (flipped from another thread)
                await asyncio.sleep(0.05)
            return await receive()

        return receive_unless_deaf

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
            profile=self.profile,
            emit=emit,
            disconnect=disconnect,
            wire=wire,
            webhooks=self.webhooks,
        )

    # Socket.IO

    async def _sio_connect(self, namespace: str, sid: str, environ: Any, auth: Any = None) -> None:
        if self.state.faults.refuse_socket:
            raise socketio.exceptions.ConnectionRefusedError("refused by the sandbox")
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        refused = self._refusal(namespace, auth, environ.get("QUERY_STRING", ""), headers)
        if refused is not None:
            raise socketio.exceptions.ConnectionRefusedError(refused)

        async def emit(name: str, data: Any) -> None:
            await self._sio.emit(name, data, to=sid, namespace=namespace)

        async def disconnect() -> None:
            await self._sio.disconnect(sid, namespace=namespace)

        # A polling transport has no socket of its own to corrupt.
        wire = environ.get("asgi.scope", {}).get(_WIRE) or Wire()
        self._conversations[sid] = self._conversation(emit, disconnect, wire)

    async def _sio_disconnect(self, namespace: str, sid: str, reason: Any = None) -> None:
        conversation = self._conversations.pop(sid, None)
        if conversation is not None:
            goodbye = (self._sio.reason.CLIENT_DISCONNECT, self._sio.reason.SERVER_DISCONNECT)
            await conversation.closed(lost=reason not in goodbye)

    async def _sio_event(
        self, event: str, namespace: str, sid: str, data: Any = None, *rest: Any
    ) -> Any:
        """Queue the event; the join's acknowledgement is the conversation's answer."""
        conversation = self._conversations.get(sid)
        if conversation is None:
            return self._sio.not_handled
        answer = conversation.feed(event, data)
        if event == self.names.join:
            acknowledgement = await answer
            if acknowledgement is not None:
                return acknowledgement
        return self._sio.not_handled  # no acknowledgement

    # plain WebSocket

    async def _websocket(self, scope: Scope, receive: Receive, send: Send, wire: Wire) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = scope.get("query_string", b"").decode("latin-1")
        refused = self._refusal("/", None, query, headers)
        if refused is not None:
            logger.info("Sandbox refused a socket: %s", refused)
            await send({"type": "websocket.close", "code": 4401})
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
        lost = True  # unless the client closes with a normal code
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    lost = message.get("code") not in (1000, 1001)
                    break
                if message.get("bytes") is not None:
                    conversation.feed(self.profile.audio_in.event, message["bytes"])
                    continue
                try:
                    frame = json.loads(message.get("text") or "")
                    conversation.feed(str(frame["event"]), frame.get("data"))
                except (ValueError, KeyError, TypeError):
                    await conversation.error("frames must be JSON objects with an event")
        finally:
            closed = True
            await conversation.closed(lost=lost)


def _overridden(
    config: SandboxConfig, transport: Transport | None, names: EventNames | None
) -> SandboxConfig:
    profile = with_overrides(config.profile, transport, names)
    return config if profile == config.profile else dataclasses.replace(config, profile=profile)


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
    settings = get_settings()
    config = SandboxConfig(
        audio=settings.upstream.audio,
        profile=settings.upstream.profile,
        webhook_url=settings.sandbox.webhook_url,
        webhook_secret=settings.sandbox.webhook_secret,
    )
    wanted = (settings.sandbox.path, config, settings.upstream.transport)
    if _mounted is None or (_mounted.prefix, _mounted.config, _mounted.transport) != wanted:
        _mounted = Sandbox(config, prefix=settings.sandbox.path)
    return _mounted
