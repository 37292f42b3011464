"""The live socket to VoiceHub for one call.

:func:`open_session` connects with the transport chosen in settings and returns an
:class:`UpstreamSession`. One task reads (:meth:`UpstreamSession.recv`); any task may
send. Sends are serialised, so the two frames of a binary Socket.IO event are never
split by another frame.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from webcall_widget.voicehub import socketio
from webcall_widget.voicehub.errors import UpstreamClosed, UpstreamConnectFailed
from webcall_widget.voicehub.events import (
    EventNames,
    Transport,
    UpstreamEvent,
    decode_event,
    join_payload,
    text_payload,
)

logger = logging.getLogger(__name__)

# Agent audio is 20 ms frames of a few hundred bytes; text events are small. Anything
# near this size is not something we can use.
MAX_UPSTREAM_FRAME = 1 << 20


def socket_url(base_url: str, socket_path: str, transport: Transport) -> str:
    """The ws(s):// URL of a call's socket on the VoiceHub host of ``base_url``.

    ``socket_path`` is the path VoiceHub returned (absolute on its host); a full URL is
    used as it is.
    """
    base = urlsplit(base_url)
    path_parts = urlsplit(socket_path)
    if path_parts.scheme in ("ws", "wss", "http", "https"):
        scheme = {"http": "ws", "https": "wss"}.get(path_parts.scheme, path_parts.scheme)
        netloc, path, query = path_parts.netloc, path_parts.path, path_parts.query
    else:
        scheme = "wss" if base.scheme == "https" else "ws"
        netloc, path, query = base.netloc, path_parts.path, path_parts.query
    if not path.startswith("/"):
        path = "/" + path
    if transport is Transport.SOCKETIO:
        path = path.rstrip("/") + "/"
        query = f"{query}&{socketio.ENGINEIO_QUERY}" if query else socketio.ENGINEIO_QUERY
    return urlunsplit((scheme, netloc, path, query, ""))


class UpstreamSession(abc.ABC):
    """One open socket to VoiceHub.

    ``recv`` must be called from one task at a time. Cancelling ``recv`` is safe: no
    event is lost halfway. ``close`` may be called at any time, more than once.
    """

    def __init__(self, ws: ClientConnection, names: EventNames) -> None:
        self._ws = ws
        self.names = names
        self._send_lock = asyncio.Lock()

    @abc.abstractmethod
    async def recv(self) -> UpstreamEvent:
        """The next event; raises ``UpstreamClosed`` when the socket is gone or silent."""

    @abc.abstractmethod
    async def emit(self, name: str, data: Any) -> None: ...

    @abc.abstractmethod
    async def send_audio(self, pcm: bytes) -> None: ...

    async def join(self, call_id: str, channels: tuple[str, ...]) -> None:
        await self.emit(self.names.join, join_payload(call_id, channels))

    async def leave(self, call_id: str, channels: tuple[str, ...]) -> None:
        await self.emit(self.names.leave, join_payload(call_id, channels))

    async def send_text(self, call_id: str, text: str) -> None:
        await self.emit(self.names.text_message, text_payload(call_id, text))

    async def close(self) -> None:
        await self._ws.close()

    async def abort(self) -> None:
        """Drop the connection without a closing handshake, for a peer that stopped
        answering or broke the protocol: a graceful close would wait for it in vain."""
        self._ws.transport.abort()
        await self._ws.wait_closed()

    async def _send(self, *frames: str | bytes) -> None:
        try:
            async with self._send_lock:
                for frame in frames:
                    await self._ws.send(frame)
        except ConnectionClosed as exc:
            raise UpstreamClosed(f"upstream socket closed ({_describe(exc)})") from exc


class SocketIOSession(UpstreamSession):
    def __init__(self, ws: ClientConnection, names: EventNames, opened: socketio.Open) -> None:
        super().__init__(ws, names)
        self._decoder = socketio.Decoder()
        self._silence_limit = opened.ping_interval + opened.ping_timeout
        self._audio_header = socketio.binary_event_header(names.audio_chunk)

    async def recv(self) -> UpstreamEvent:
        while True:
            packet = await self._next_packet()
            if isinstance(packet, socketio.Event):
                return decode_event(self.names, packet.name, packet.data)
            if isinstance(packet, socketio.Ping):
                await self._send(socketio.PONG + packet.payload)
            elif isinstance(packet, socketio.Closed):
                raise UpstreamClosed(packet.reason)
            elif isinstance(packet, socketio.ConnectError):
                raise UpstreamClosed(f"upstream refused the socket: {packet.message}")

    async def _next_packet(self) -> socketio.Packet | None:
        try:
            async with asyncio.timeout(self._silence_limit):
                frame = await self._ws.recv()
        except TimeoutError as exc:
            raise UpstreamClosed(
                f"upstream sent nothing for {self._silence_limit:g}s (missed heartbeats)"
            ) from exc
        except ConnectionClosed as exc:
            raise UpstreamClosed(f"upstream socket closed ({_describe(exc)})") from exc
        try:
            if isinstance(frame, str):
                return self._decoder.receive_text(frame)
            return self._decoder.receive_binary(frame)
        except socketio.ProtocolViolation as exc:
            raise UpstreamClosed(f"upstream broke the Socket.IO protocol: {exc}") from exc

    async def emit(self, name: str, data: Any) -> None:
        await self._send(socketio.encode_event(name, data))

    async def send_audio(self, pcm: bytes) -> None:
        await self._send(self._audio_header, pcm)

    async def close(self) -> None:
        with contextlib.suppress(UpstreamClosed):
            await self._send(socketio.DISCONNECT)
        await super().close()

    @classmethod
    async def handshake(cls, ws: ClientConnection, names: EventNames) -> SocketIOSession:
        decoder = socketio.Decoder()
        first = await ws.recv()
        opened = decoder.receive_text(first) if isinstance(first, str) else None
        if not isinstance(opened, socketio.Open):
            raise UpstreamConnectFailed("upstream did not open an Engine.IO session")
        await ws.send(socketio.CONNECT)
        while True:
            frame = await ws.recv()
            packet = decoder.receive_text(frame) if isinstance(frame, str) else None
            if isinstance(packet, socketio.Ping):
                await ws.send(socketio.PONG + packet.payload)
                continue
            if isinstance(packet, socketio.Connected):
                return cls(ws, names, opened)
            if isinstance(packet, socketio.ConnectError):
                raise UpstreamConnectFailed(f"upstream refused the socket: {packet.message}")
            raise UpstreamConnectFailed("upstream did not confirm the Socket.IO connection")


class WebSocketSession(UpstreamSession):
    """Plain WebSocket: ``{"event": name, "data": ...}`` text frames, audio as binary."""

    async def recv(self) -> UpstreamEvent:
        while True:
            try:
                frame = await self._ws.recv()
            except ConnectionClosed as exc:
                raise UpstreamClosed(f"upstream socket closed ({_describe(exc)})") from exc
            if isinstance(frame, bytes):
                return decode_event(self.names, self.names.audio_chunk, frame)
            try:
                message = json.loads(frame)
            except ValueError:
                logger.warning("Ignoring an upstream frame that is not JSON.")
                continue
            if isinstance(message, dict) and isinstance(message.get("event"), str):
                return decode_event(self.names, message["event"], message.get("data"))
            logger.warning("Ignoring an upstream frame without an event name.")

    async def emit(self, name: str, data: Any) -> None:
        await self._send(json.dumps({"event": name, "data": data}, separators=(",", ":")))

    async def send_audio(self, pcm: bytes) -> None:
        await self._send(pcm)


async def open_session(
    *,
    base_url: str,
    socket_path: str,
    transport: Transport,
    names: EventNames,
    connect_timeout: float,
) -> UpstreamSession:
    """Connect to a call's socket and finish the transport's handshake.

    Raises:
        UpstreamConnectFailed: refused, unreachable, not the expected protocol, or
            slower than ``connect_timeout`` seconds in total.
    """
    url = socket_url(base_url, socket_path, transport)
    ws: ClientConnection | None = None
    try:
        async with asyncio.timeout(connect_timeout):
            ws = await connect(
                url,
                open_timeout=None,
                close_timeout=2,
                max_size=MAX_UPSTREAM_FRAME,
                compression=None,
                # Engine.IO has its own heartbeat; a plain socket uses WebSocket pings.
                ping_interval=None if transport is Transport.SOCKETIO else 20,
                user_agent_header="django-webcall-widget",
            )
            if transport is Transport.SOCKETIO:
                return await SocketIOSession.handshake(ws, names)
            return WebSocketSession(ws, names)
    except TimeoutError as exc:
        await _abandon(ws)
        raise UpstreamConnectFailed(
            f"upstream socket did not open within {connect_timeout:g}s"
        ) from exc
    except (
        OSError,
        InvalidHandshake,
        InvalidURI,
        ConnectionClosed,
        socketio.ProtocolViolation,
    ) as exc:
        await _abandon(ws)
        raise UpstreamConnectFailed(
            f"could not open the upstream socket: {type(exc).__name__}: {exc}"
        ) from exc
    except BaseException:
        await _abandon(ws)
        raise


async def _abandon(ws: ClientConnection | None) -> None:
    if ws is not None:
        await ws.close()


def _describe(exc: ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    if frame is None:
        return "no close frame"
    return f"code {frame.code}" + (f", {frame.reason}" if frame.reason else "")
