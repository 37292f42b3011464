"""Sans-I/O Socket.IO v5 over Engine.IO v4, WebSocket transport only.

Just enough of the protocol for one client in one namespace (the default one unless a
profile says otherwise): the open and connect handshakes (with an ``auth`` payload),
heartbeats, events, acknowledgements, and binary events whose attachments arrive as
separate binary frames. No I/O happens here; :mod:`webcall_widget.voicehub.transports`
moves the frames.

Reference: https://socket.io/docs/v4/socket-io-protocol/ and
https://socket.io/docs/v4/engine-io-protocol/
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

ENGINEIO_QUERY = "EIO=4&transport=websocket"

# Engine.IO packet types
_EIO_OPEN, _EIO_CLOSE, _EIO_PING, _EIO_PONG, _EIO_MESSAGE, _EIO_NOOP = "0", "1", "2", "3", "4", "6"
# Socket.IO packet types
_SIO_CONNECT, _SIO_DISCONNECT, _SIO_EVENT, _SIO_ACK = "0", "1", "2", "3"
_SIO_CONNECT_ERROR, _SIO_BINARY_EVENT, _SIO_BINARY_ACK = "4", "5", "6"

CONNECT = _EIO_MESSAGE + _SIO_CONNECT
PONG = _EIO_PONG
DISCONNECT = _EIO_MESSAGE + _SIO_DISCONNECT


class ProtocolViolation(Exception):
    """The peer sent something that is not Socket.IO v5 / Engine.IO v4."""


@dataclass(frozen=True, slots=True)
class Open:
    sid: str
    ping_interval: float  # seconds
    ping_timeout: float  # seconds
    max_payload: int


@dataclass(frozen=True, slots=True)
class Ping:
    payload: str


@dataclass(frozen=True, slots=True)
class Closed:
    reason: str


@dataclass(frozen=True, slots=True)
class Connected:
    data: Any


@dataclass(frozen=True, slots=True)
class ConnectError:
    message: str


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    data: Any


@dataclass(frozen=True, slots=True)
class Ack:
    """The server's acknowledgement of the event we sent with ``ack_id``."""

    id: int
    data: Any  # the first argument, or None


Packet = Open | Ping | Closed | Connected | ConnectError | Event | Ack


def _prefix(namespace: str) -> str:
    return "" if namespace == "/" else namespace + ","


def connect_packet(namespace: str = "/", auth: Any = None) -> str:
    """``40``, with the namespace and the CONNECT ``auth`` payload when there are any."""
    payload = "" if auth is None else json.dumps(auth, separators=(",", ":"))
    return _EIO_MESSAGE + _SIO_CONNECT + _prefix(namespace) + payload


def disconnect_packet(namespace: str = "/") -> str:
    return _EIO_MESSAGE + _SIO_DISCONNECT + _prefix(namespace)


def encode_event(name: str, data: Any, *, namespace: str = "/", ack_id: int | None = None) -> str:
    """A text event frame: ``42["name", data]``."""
    ack = "" if ack_id is None else str(ack_id)
    return (
        _EIO_MESSAGE
        + _SIO_EVENT
        + _prefix(namespace)
        + ack
        + json.dumps([name, data], separators=(",", ":"))
    )


def encode(
    name: str, data: Any, *, namespace: str = "/", ack_id: int | None = None
) -> list[str | bytes]:
    """The frames of one event: one text frame, or, when ``data`` holds bytes anywhere,
    a binary event header followed by each attachment as a binary frame."""
    attachments: list[bytes] = []
    placed = _place(data, attachments)
    if not attachments:
        return [encode_event(name, data, namespace=namespace, ack_id=ack_id)]
    ack = "" if ack_id is None else str(ack_id)
    header = (
        _EIO_MESSAGE
        + _SIO_BINARY_EVENT
        + f"{len(attachments)}-"
        + _prefix(namespace)
        + ack
        + json.dumps([name, placed], separators=(",", ":"))
    )
    return [header, *attachments]


def binary_event_header(name: str, *, namespace: str = "/") -> str:
    """The text frame announcing an event whose only argument is one binary attachment.

    Send it, then the bytes as a binary frame. The header depends only on the event name,
    so the audio path can build it once.
    """
    header = encode(name, b"", namespace=namespace)[0]
    assert isinstance(header, str)
    return header


def _place(data: Any, attachments: list[bytes]) -> Any:
    if isinstance(data, bytes | bytearray | memoryview):
        attachments.append(bytes(data))
        return {"_placeholder": True, "num": len(attachments) - 1}
    if isinstance(data, dict):
        return {key: _place(value, attachments) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_place(item, attachments) for item in data]
    return data


# Binary event headers remembered per socket, and the longest remembered: an upstream that
# varies them only costs a parse each.
MAX_KNOWN_HEADERS = 8
MAX_KNOWN_HEADER_LENGTH = 256
# The pending "event" of another namespace's binary packet, whose attachments are skipped.
_FOREIGN = "\x00another namespace"


class Decoder:
    """Turns received frames into packets, holding binary events until complete.

    Packets of other namespaces than ``namespace`` are dropped.
    """

    def __init__(self, namespace: str = "/") -> None:
        self.namespace = namespace
        # (event name, or None for an ack; ack id; data; attachments so far; expected)
        self._pending: tuple[str | None, int | None, Any, list[bytes], int] | None = None
        # The header of every audio chunk is the same text: parsed once, not 50 times a
        # second. (event name, payload with placeholders, attachments expected)
        self._event_headers: dict[str, tuple[str, Any, int]] = {}

    def receive_text(self, frame: str) -> Packet | None:
        if self._pending is not None:
            raise ProtocolViolation("text frame while binary attachments were expected")
        if not frame:
            raise ProtocolViolation("empty Engine.IO frame")
        kind, body = frame[0], frame[1:]
        if kind == _EIO_MESSAGE:
            if (header := self._event_headers.get(body)) is not None:
                name, data, expected = header
                self._pending = (name, None, data, [], expected)
                return None
            return self._socketio(body)
        if kind == _EIO_PING:
            return Ping(body)
        if kind == _EIO_OPEN:
            return _open(body)
        if kind == _EIO_CLOSE:
            return Closed("server closed the Engine.IO session")
        if kind in (_EIO_PONG, _EIO_NOOP):
            return None
        raise ProtocolViolation(f"unknown Engine.IO packet type {kind!r}")

    def receive_binary(self, frame: bytes) -> Packet | None:
        if self._pending is None:
            raise ProtocolViolation("binary frame without a binary event header")
        name, ack_id, data, attachments, expected = self._pending
        attachments.append(frame)
        if len(attachments) < expected:
            return None
        self._pending = None
        if name is _FOREIGN:
            return None
        if name is None:
            return Ack(ack_id or 0, _fill(data, attachments))
        return Event(name, _fill(data, attachments))

    def _socketio(self, body: str) -> Packet | None:
        if not body:
            raise ProtocolViolation("empty Socket.IO packet")
        kind, rest = body[0], body[1:]
        attachments = 0
        if kind in (_SIO_BINARY_EVENT, _SIO_BINARY_ACK):
            count, dash, rest = rest.partition("-")
            if not dash or not count.isdigit():
                raise ProtocolViolation("binary packet without an attachment count")
            attachments = int(count)
        namespace = "/"
        if rest.startswith("/"):
            namespace, _, rest = rest.partition(",")
        if namespace != self.namespace:
            if attachments:  # its attachments follow, and are not ours either
                self._pending = (_FOREIGN, None, None, [], attachments)
            return None  # another namespace: not ours
        index = 0
        while index < len(rest) and rest[index].isdigit():
            index += 1
        ack_id = int(rest[:index]) if index else None
        payload = _json(rest[index:]) if rest[index:] else None
        if kind == _SIO_CONNECT:
            return Connected(payload)
        if kind == _SIO_CONNECT_ERROR:
            message = payload.get("message") if isinstance(payload, dict) else payload
            return ConnectError(str(message or "connection refused"))
        if kind == _SIO_DISCONNECT:
            return Closed("server disconnected the socket")
        if kind in (_SIO_ACK, _SIO_BINARY_ACK):
            if ack_id is None:
                raise ProtocolViolation("acknowledgement without an id")
            first = payload[0] if isinstance(payload, list) and payload else None
            if attachments:
                self._pending = (None, ack_id, first, [], attachments)
                return None
            return Ack(ack_id, first)
        if kind not in (_SIO_EVENT, _SIO_BINARY_EVENT):
            raise ProtocolViolation(f"unknown Socket.IO packet type {kind!r}")
        if not isinstance(payload, list) or not payload or not isinstance(payload[0], str):
            raise ProtocolViolation("event without a name")
        name, args = payload[0], payload[1:]
        data = args[0] if args else None
        if attachments:
            self._pending = (name, None, data, [], attachments)
            known = self._event_headers
            if len(known) < MAX_KNOWN_HEADERS and len(body) <= MAX_KNOWN_HEADER_LENGTH:
                known[body] = (name, data, attachments)
            return None
        return Event(name, data)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ProtocolViolation("packet payload is not JSON") from exc


def _open(body: str) -> Open:
    info = _json(body)
    if not isinstance(info, dict) or not isinstance(info.get("sid"), str):
        raise ProtocolViolation("open packet without a session id")
    try:
        return Open(
            sid=info["sid"],
            ping_interval=float(info.get("pingInterval", 25000)) / 1000,
            ping_timeout=float(info.get("pingTimeout", 20000)) / 1000,
            max_payload=int(info.get("maxPayload", 1_000_000)),
        )
    except (TypeError, ValueError) as exc:
        raise ProtocolViolation("open packet with malformed timings") from exc


def _fill(data: Any, attachments: list[bytes]) -> Any:
    if isinstance(data, dict):
        if data.get("_placeholder") is True and isinstance(data.get("num"), int):
            num = data["num"]
            if not 0 <= num < len(attachments):
                raise ProtocolViolation("placeholder refers to a missing attachment")
            return attachments[num]
        return {key: _fill(value, attachments) for key, value in data.items()}
    if isinstance(data, list):
        return [_fill(item, attachments) for item in data]
    return data
