"""Just enough WebSocket (RFC 6455) for the load benchmark's two ends, on asyncio protocols.

The benchmark's client and its loopback upstream run beside the relay on the same cores. Built
on a full WebSocket library, they needed more CPU than the relay they measured (at 150 calls
the client alone took 85 % of a core), so every path's latency was the harness's own. These
ends do only what the benchmark needs: unfragmented frames, client frames masked with a zero
key (RFC 6455 wants an unpredictable one, against proxies that cache; no server checks, and
the server still unmasks every byte, so the relay's cost is unchanged), pongs for pings, and
one write per batch of frames.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import zlib
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

from websockets.speedups import apply_mask
from websockets.utils import accept_key as websockets_accept_key

from webcall_widget.voicehub.frames import frame_header

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA
ZERO_MASK = bytes(4)

Handler = Callable[[int, bytes], None]


class WireError(Exception):
    """The peer sent something these ends do not speak (a fragment, a refused upgrade)."""


def frame(opcode: int, payload: bytes, *, masked: bool) -> bytes:
    """One final frame; ``masked`` (a client's frames) uses the zero key."""
    header = frame_header(opcode, len(payload), masked=masked)
    return header + ZERO_MASK + payload if masked else header + payload


def accept_key(key: bytes) -> bytes:
    return websockets_accept_key(key.decode()).encode()


class FrameReader:
    """Frames out of a byte stream, as ``(opcode, payload)``."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.inflate: Callable[[bytes], bytes] | None = None  # permessage-deflate, once agreed

    def _inflated(self, payload: bytes) -> bytes:
        if self.inflate is None:
            raise WireError("a compressed frame, but no compression was agreed")
        return self.inflate(payload + b"\x00\x00\xff\xff")

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buffer = self._buffer
        buffer += data
        frames = []
        pos, end = 0, len(buffer)
        while end - pos >= 2:
            first, second = buffer[pos], buffer[pos + 1]
            if not first & 0x80:
                raise WireError("fragmented frames are not supported")
            n, at = second & 0x7F, pos + 2
            if n == 126:
                if end - at < 2:
                    break
                n, at = int.from_bytes(buffer[at : at + 2], "big"), at + 2
            elif n == 127:
                if end - at < 8:
                    break
                n, at = int.from_bytes(buffer[at : at + 8], "big"), at + 8
            mask = None
            if second & 0x80:
                if end - at < 4:
                    break
                mask, at = bytes(buffer[at : at + 4]), at + 4
            if end - at < n:
                break
            payload = bytes(buffer[at : at + n])
            if mask is not None and mask != ZERO_MASK:
                payload = apply_mask(payload, mask)
            if first & 0x40:  # RSV1: compressed (permessage-deflate)
                payload = self._inflated(payload)
            frames.append((first & 0x0F, payload))
            pos = at + n
        del buffer[:pos]
        return frames


class Socket(asyncio.Protocol):
    """One end of a WebSocket. Frames go to ``on_frame``; until one is set, to a queue
    that ``recv`` reads (the handshakes of the protocols above). Pings are answered."""

    def __init__(self, *, client: bool) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.on_frame: Handler | None = None
        self.frames: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self.closed = asyncio.get_running_loop().create_future()
        self.reader = FrameReader()
        self.offer_deflate = False  # a client that offered permessage-deflate
        self.deflated = False  # and the server agreed
        self._head = bytearray()
        self._upgraded: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if not self._upgraded.done():
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            data = bytes(self._head[end + 4 :])
            head = bytes(self._head[:end])
            if self.offer_deflate and b"permessage-deflate" in head.lower():
                self._agree_deflate(head)  # before any frame after the head is read
            self._upgraded.set_result(head)
            if not data:
                return
        try:
            frames = self.reader.feed(data)
        except WireError as exc:
            self.abort(exc)
            return
        for opcode, payload in frames:
            if opcode == PING:
                self.send(PONG, payload)
            elif opcode == CLOSE:
                self.abort(None)
            elif self.on_frame is not None:
                self.on_frame(opcode, payload)
            else:
                self.frames.put_nowait((opcode, payload))

    def _agree_deflate(self, head: bytes) -> None:
        self.deflated = True
        if b"server_no_context_takeover" in head.lower():
            self.reader.inflate = lambda data: zlib.decompressobj(-15).decompress(data)
        else:
            self.reader.inflate = zlib.decompressobj(-15).decompress

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._upgraded.done():
            self._upgraded.set_exception(exc or WireError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)
        self.frames.put_nowait((CLOSE, b""))

    def abort(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.transport.abort()

    # sending

    def send(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(frame(opcode, payload, masked=self.client))

    def send_text(self, text: str) -> None:
        self.send(TEXT, text.encode())

    def send_frames(self, *frames: tuple[int, bytes]) -> None:
        """Several frames in one write."""
        assert self.transport is not None
        masked = self.client
        self.transport.write(b"".join(frame(op, data, masked=masked) for op, data in frames))

    async def recv(self) -> tuple[int, bytes]:
        return await self.frames.get()

    async def recv_text(self) -> str:
        opcode, payload = await self.recv()
        if opcode == CLOSE:
            raise WireError("the socket closed")
        return payload.decode()

    async def close(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.send(CLOSE, struct.pack("!H", 1000))
        self.transport.close()
        await self.closed

    # handshakes

    async def upgraded(self) -> bytes:
        """The peer's HTTP head (request or response), once it has arrived."""
        return await self._upgraded


async def connect(url: str, *, origin: str | None = None, deflate: bool = False) -> Socket:
    """A client socket to ``ws://host:port/path?query``. With ``deflate`` it offers
    permessage-deflate as browsers do, and inflates what the server compresses (its own
    frames go uncompressed, which the extension allows)."""
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    transport, socket = await loop.create_connection(
        lambda: Socket(client=True), parts.hostname or "127.0.0.1", parts.port or 80
    )
    key = base64.b64encode(os.urandom(16))
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [
        f"GET {target or '/'} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode()}",
        "Sec-WebSocket-Version: 13",
    ]
    if deflate:
        lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
        socket.offer_deflate = True
    if origin:
        lines.append(f"Origin: {origin}")
    socket.transport = transport  # uvloop calls connection_made only on its next turn
    transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = await socket.upgraded()
    status = head.split(b"\r\n", 1)[0]
    if b" 101 " not in status + b" ":
        socket.abort(None)
        raise WireError(f"upgrade refused: {status.decode(errors='replace')}")
    if accept_key(key) not in head:
        socket.abort(None)
        raise WireError("the server's Sec-WebSocket-Accept does not match")
    return socket


async def accept(socket: Socket) -> str | None:
    """Complete a server socket's handshake; the request's target, or None when it was not
    a WebSocket upgrade (the connection is then closed)."""
    head = await socket.upgraded()
    assert socket.transport is not None
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    key = headers.get(b"sec-websocket-key")
    if key is None:
        socket.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        socket.transport.close()
        return None
    socket.transport.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n"
    )
    return lines[0].split()[1].decode()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when it is installed (the dev extra has it), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
