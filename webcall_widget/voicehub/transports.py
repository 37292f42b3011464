"""The two ways a call's socket to VoiceHub carries events: Socket.IO
(:class:`SocketIOSession`, VoiceHub's documented one) and plain WebSocket frames of JSON
(:class:`WebSocketSession`). What they share, reading, joining and sending, is
:class:`~webcall_widget.voicehub.session.UpstreamSession`'s."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from websockets.exceptions import ConnectionClosed

from webcall_widget.voicehub import socketio
from webcall_widget.voicehub.address import SocketAddress
from webcall_widget.voicehub.connection import UpstreamConnection
from webcall_widget.voicehub.errors import UpstreamClosed, UpstreamConnectFailed, UpstreamHungUp
from webcall_widget.voicehub.events import BadPayload
from webcall_widget.voicehub.profile import UpstreamProfile
from webcall_widget.voicehub.session import UpstreamSession

__all__ = ["ConnectRefused", "SocketIOSession", "WebSocketSession"]


class ConnectRefused(Exception):
    """The Socket.IO CONNECT was refused (with the server's message)."""


class SocketIOSession(UpstreamSession):
    """Socket.IO: the upstream is gone when it has said nothing, heartbeats included, for
    a ping interval plus a ping timeout. That is measured from the last frame received, so
    a reader that is cancelled and calls again (or a visitor who keeps typing) does not
    move the deadline. One timer watches it, woken once per silence window rather than a
    timeout around every read (two per audio chunk)."""

    def __init__(
        self,
        ws: UpstreamConnection,
        profile: UpstreamProfile,
        opened: socketio.Open,
        *,
        namespace: str = "/",
        decoder: socketio.Decoder | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(ws, profile, **kwargs)
        self.namespace = namespace
        self._decoder = decoder or socketio.Decoder(namespace)
        self._silence_limit = opened.ping_interval + opened.ping_timeout
        self._audio_headers: dict[str, str] = {}
        self.last_heard = self._loop.time()
        self._silent = False
        self._watch = self._loop.call_at(self.last_heard + self._silence_limit, self._check)

    def _check(self) -> None:
        """The silence timer: drop a socket that stopped talking, or look again later."""
        deadline = self.last_heard + self._silence_limit
        if self._loop.time() < deadline:
            self._watch = self._loop.call_at(deadline, self._check)
            return
        self._silent = True
        self._ws.transport.abort()  # the pending read ends with ConnectionClosed

    async def _receive(self) -> tuple[str, Any] | None:
        while True:
            packet = await self._next_packet()
            if isinstance(packet, socketio.Event):
                return packet.name, packet.data
            if isinstance(packet, socketio.Ack):
                event = self._acknowledged(packet.id, packet.data)
                if event is not None:
                    self._pending.append(event)
                    return None
            elif isinstance(packet, socketio.Ping):
                await self._send(socketio.PONG + packet.payload)
            elif isinstance(packet, socketio.Closed):
                raise UpstreamHungUp(packet.reason)
            elif isinstance(packet, socketio.ConnectError):
                raise UpstreamClosed(
                    f"upstream refused the socket: {self.context.redact(packet.message)}"
                )

    async def _next_packet(self) -> socketio.Packet | None:
        try:
            frame = await self._ws.next_frame()
            self.last_heard = self._loop.time()
        except ConnectionClosed as exc:
            self._watch.cancel()
            if self._silent:
                raise UpstreamClosed(
                    f"upstream sent nothing for {self._silence_limit:g}s (missed heartbeats)"
                ) from exc
            raise self._closed(exc) from exc
        try:
            if isinstance(frame, str):
                return self._decoder.receive_text(frame)
            return self._decoder.receive_binary(frame)
        except socketio.ProtocolViolation as exc:
            raise UpstreamClosed(f"upstream broke the Socket.IO protocol: {exc}") from exc

    async def _emit(self, name: str, data: Any, ack_id: int | None) -> None:
        if isinstance(data, bytes) and ack_id is None:
            header = self._audio_headers.get(name)
            if header is None:
                header = socketio.binary_event_header(name, namespace=self.namespace)
                self._audio_headers[name] = header
            await self._send(header, data)
            return
        await self._send(*socketio.encode(name, data, namespace=self.namespace, ack_id=ack_id))

    async def close(self) -> None:
        self._watch.cancel()
        with contextlib.suppress(UpstreamClosed):
            await self._send(socketio.disconnect_packet(self.namespace))
        await super().close()

    async def abort(self) -> None:
        self._watch.cancel()
        await super().abort()

    @classmethod
    async def handshake(
        cls,
        ws: UpstreamConnection,
        profile: UpstreamProfile,
        address: SocketAddress,
        **kwargs: Any,
    ) -> SocketIOSession:
        decoder = socketio.Decoder(address.namespace)
        first = await ws.next_frame()
        opened = decoder.receive_text(first) if isinstance(first, str) else None
        if not isinstance(opened, socketio.Open):
            raise UpstreamConnectFailed("upstream did not open an Engine.IO session")
        await ws.send(socketio.connect_packet(address.namespace, address.auth))
        while True:
            frame = await ws.next_frame()
            if not isinstance(frame, str):
                raise UpstreamConnectFailed("upstream did not confirm the Socket.IO connection")
            packet = decoder.receive_text(frame)
            if packet is None:
                continue  # another namespace's packet
            if isinstance(packet, socketio.Ping):
                await ws.send(socketio.PONG + packet.payload)
                continue
            if isinstance(packet, socketio.Connected):
                return cls(
                    ws, profile, opened, namespace=address.namespace, decoder=decoder, **kwargs
                )
            if isinstance(packet, socketio.ConnectError):
                raise ConnectRefused(packet.message)
            raise UpstreamConnectFailed("upstream did not confirm the Socket.IO connection")


class WebSocketSession(UpstreamSession):
    """Plain WebSocket: ``{"event": name, "data": ...}`` text frames; binary frames are
    agent audio (down) and, with ``AUDIO_IN_FORMAT`` "binary", the visitor's (up)."""

    async def _receive(self) -> tuple[str, Any] | None:
        while True:
            try:
                frame = await self._ws.next_frame()
            except ConnectionClosed as exc:
                raise self._closed(exc) from exc
            if isinstance(frame, bytes):
                return self.profile.audio_out.event, frame
            try:
                message = json.loads(frame)
            except ValueError:
                self._monitor.bad(BadPayload("<frame>", "a text frame that is not JSON", frame))
                continue
            if isinstance(message, dict) and isinstance(message.get("event"), str):
                return message["event"], message.get("data")
            self._monitor.bad(BadPayload("<frame>", "a JSON frame without an event", message))

    async def _emit(self, name: str, data: Any, ack_id: int | None) -> None:
        if isinstance(data, bytes):
            await self._send(data)
            return
        await self._send(json.dumps({"event": name, "data": data}, separators=(",", ":")))
