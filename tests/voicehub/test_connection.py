"""The upstream connection's fast lane, against a raw TCP server that writes exactly the
bytes each test needs, cut where each test needs (websockets' own server would never send
a masked frame or bad UTF-8)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import (
    ConcurrencyError,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidStatus,
)
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State
from websockets.utils import accept_key

from tests.polling import until
from webcall_widget.voicehub.connection import QUEUE_HIGH, UpstreamConnection

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[None]]


def frame(opcode: Opcode, data: bytes | str, *, fin: bool = True) -> bytes:
    payload = data.encode() if isinstance(data, str) else data
    return Frame(opcode, payload, fin=fin).serialize(mask=False, extensions=[])


def masked(data: bytes) -> bytes:
    """A binary frame with the mask bit set, which no server may send."""
    key = b"\x01\x02\x03\x04"
    body = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    return bytes([0x82, 0x80 | len(data)]) + key + body


def close(code: int, reason: str = "") -> bytes:
    return frame(Opcode.CLOSE, Close(code, reason).serialize())


async def upgrade(reader: asyncio.StreamReader) -> bytes:
    """Read the client's upgrade request; the 101 response that accepts it."""
    request = await reader.readuntil(b"\r\n\r\n")
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = accept_key(key.decode()).encode()
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


async def write_in_pieces(
    writer: asyncio.StreamWriter, data: bytes, *, largest: int = 300, seed: int = 7
) -> None:
    """``data`` in pieces of 1 to ``largest`` bytes, each flushed on its own, so that frame
    headers, lengths and payloads are cut everywhere."""
    pieces = random.Random(seed)
    at = 0
    while at < len(data):
        size = pieces.randint(1, largest)
        writer.write(data[at : at + size])
        await writer.drain()
        await asyncio.sleep(0.001)
        at += size


async def answer_the_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the client's frames until its close, answering its pings, then answer the close
    and end the connection, as a server does (until then the client waits for it)."""
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            first, second = await reader.readexactly(2)
            length = second & 0x7F
            if length >= 126:
                length = int.from_bytes(await reader.readexactly(2 if length == 126 else 8))
            key = await reader.readexactly(4)
            body = bytes(b ^ key[i % 4] for i, b in enumerate(await reader.readexactly(length)))
            if first & 0x0F == Opcode.PING:
                writer.write(frame(Opcode.PONG, body))
            if first & 0x0F == Opcode.CLOSE:
                writer.write(frame(Opcode.CLOSE, body[:2]))
                await writer.drain()
                return


@asynccontextmanager
async def upstream(script: Script, **options: object) -> AsyncIterator[UpstreamConnection]:
    """A connection to a server that answers the upgrade and then runs ``script``."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await script(reader, writer, await upgrade(reader))
            await answer_the_close(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with connect(
            f"ws://127.0.0.1:{port}/",
            create_connection=UpstreamConnection,
            compression=None,
            close_timeout=1,
            open_timeout=5,
            **{"ping_interval": None, **options},  # type: ignore[arg-type]
        ) as connection:
            assert isinstance(connection, UpstreamConnection)
            yield connection
    finally:
        server.close()
        await server.wait_closed()


async def read(connection: UpstreamConnection, count: int) -> list[str | bytes]:
    return [await asyncio.wait_for(connection.next_frame(), 5) for _ in range(count)]


MIXED = [
    frame(Opcode.TEXT, '42["conversation.created",{"text":"héllo"}]'),
    frame(Opcode.TEXT, '451-["audio.chunk",{"_placeholder":true,"num":0}]'),
    frame(Opcode.BINARY, bytes(range(256)) * 3),  # a 16-bit length
    frame(Opcode.BINARY, b""),
    frame(Opcode.BINARY, bytes(70_000)),  # a 64-bit length
    frame(Opcode.TEXT, "2"),
]
MIXED_READ = [
    '42["conversation.created",{"text":"héllo"}]',
    '451-["audio.chunk",{"_placeholder":true,"num":0}]',
    bytes(range(256)) * 3,
    b"",
    bytes(70_000),
    "2",
]


async def test_frames_cut_anywhere_arrive_whole_and_in_order():
    async def script(reader, writer, head):
        await write_in_pieces(writer, head + b"".join(MIXED))

    async with upstream(script) as connection:
        assert await read(connection, len(MIXED)) == MIXED_READ
        assert connection.in_lane


async def test_a_handshake_response_cut_in_pieces_is_read_whole():
    async def script(reader, writer, head):
        await write_in_pieces(writer, head + b"".join(MIXED[:3]), largest=20)

    async with upstream(script) as connection:
        assert await read(connection, 3) == MIXED_READ[:3]


async def test_frames_in_the_same_packet_as_the_handshake_are_read():
    async def script(reader, writer, head):
        writer.write(head + b"".join(MIXED))

    async with upstream(script) as connection:
        assert await read(connection, len(MIXED)) == MIXED_READ


async def test_a_connection_that_forgot_its_handshake_keeps_no_headers_and_reads_on():
    async def script(reader, writer, head):
        writer.write(head)
        await writer.drain()
        await asyncio.sleep(0.05)  # the frames come after the handshake is forgotten
        writer.write(b"".join(MIXED))

    async with upstream(
        script, additional_headers={"Authorization": "Bearer x" * 50}
    ) as connection:
        request: object = connection.request
        assert request is not None
        connection.forget_handshake()
        assert connection.request is None
        assert connection.response is not None and not connection.response.headers
        assert await read(connection, len(MIXED)) == MIXED_READ


async def test_a_ping_between_frames_is_answered_and_reading_goes_on():
    pong = asyncio.get_running_loop().create_future()

    async def script(reader, writer, head):
        writer.write(head + frame(Opcode.TEXT, "a") + frame(Opcode.PING, b"are you there"))
        writer.write(frame(Opcode.BINARY, b"b"))
        answer = await reader.readexactly(2 + 4 + len(b"are you there"))
        pong.set_result(answer)

    async with upstream(script) as connection:
        assert await read(connection, 2) == ["a", b"b"]
        answer = await asyncio.wait_for(pong, 5)
        key, body = answer[2:6], answer[6:]
        assert answer[0] == 0x8A  # a final pong
        assert bytes(b ^ key[i % 4] for i, b in enumerate(body)) == b"are you there"
        assert connection.in_lane


async def test_a_fragmented_message_is_left_to_websockets_and_keeps_its_place():
    async def script(reader, writer, head):
        fragments = frame(Opcode.TEXT, "b", fin=False) + frame(Opcode.CONT, "c")
        await write_in_pieces(
            writer, head + frame(Opcode.TEXT, "a") + fragments + frame(Opcode.BINARY, b"d")
        )

    async with upstream(script) as connection:
        assert await read(connection, 3) == ["a", "bc", b"d"]
        assert not connection.in_lane


async def test_a_close_from_upstream_ends_reading_after_what_came_before_it():
    async def script(reader, writer, head):
        writer.write(head + frame(Opcode.TEXT, "last words") + close(1000, "bye"))

    async with upstream(script) as connection:
        assert await read(connection, 1) == ["last words"]
        with pytest.raises(ConnectionClosedOK) as closed:
            await connection.next_frame()
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1000, "bye")


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (frame(Opcode.BINARY, bytes(2000)), 1009),  # over max_size
        (frame(Opcode.TEXT, b"\xff\xfe"), 1007),  # not UTF-8
        (masked(b"masked"), 1002),  # servers never mask
        (bytes([0xC2, 0x01, 0x00]), 1002),  # a reserved bit, no extension agreed
        (bytes([0x83, 0x00]), 1002),  # an opcode that does not exist
        (bytes([0x89, 126, 0, 126]) + bytes(126), 1002),  # a ping over 125 bytes
        (bytes([0x89, 127]) + (1 << 40).to_bytes(8), 1009),  # a ping of a terabyte
    ],
    ids=[
        "too-big",
        "bad-utf8",
        "masked",
        "reserved-bit",
        "unknown-opcode",
        "long-ping",
        "huge-ping",
    ],
)
async def test_a_frame_that_breaks_the_protocol_fails_the_connection_with_its_code(bad, code):
    async def script(reader, writer, head):
        writer.write(head + frame(Opcode.TEXT, "fine") + bad + frame(Opcode.TEXT, "never"))

    async with upstream(script, max_size=1000) as connection:
        assert await read(connection, 1) == ["fine"]
        with pytest.raises(ConnectionClosedError) as closed:
            await connection.next_frame()
        assert closed.value.sent is not None and closed.value.sent.code == code


async def test_a_socket_dropped_mid_frame_ends_reading_after_the_whole_frames():
    async def script(reader, writer, head):
        writer.write(head + frame(Opcode.TEXT, "one") + frame(Opcode.TEXT, "two"))
        writer.write(frame(Opcode.BINARY, bytes(500))[:100])
        await writer.drain()
        writer.transport.abort()

    async with upstream(script) as connection:
        assert await read(connection, 2) == ["one", "two"]
        with pytest.raises(ConnectionClosedError):
            await connection.next_frame()


async def test_a_refused_upgrade_is_reported_as_websockets_reports_it():
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\nno key")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"ws://127.0.0.1:{port}/", create_connection=UpstreamConnection)
        assert refused.value.response.status_code == 403
        assert refused.value.response.body == b"no key"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_reader_that_falls_behind_stops_reading_the_socket_until_it_catches_up():
    count = QUEUE_HIGH * 3

    async def script(reader, writer, head):
        await write_in_pieces(
            writer, head + b"".join(frame(Opcode.BINARY, bytes([n])) for n in range(count))
        )

    async with upstream(script) as connection:
        await until(lambda: not connection.transport.is_reading())
        await asyncio.sleep(0.05)
        assert len(connection._frames) < count
        assert await read(connection, count) == [bytes([n]) for n in range(count)]
        assert connection.transport.is_reading()


async def test_keepalive_pings_answered_through_the_lane_keep_the_connection_open():
    async def script(reader, writer, head):
        async def stream():
            for n in range(60):
                writer.write(frame(Opcode.TEXT, str(n)))
                await asyncio.sleep(0.02)

        writer.write(head)
        streaming = asyncio.create_task(stream())
        await answer_the_close(reader, writer)  # and the pings before it
        await streaming

    async with upstream(script, ping_interval=0.1, ping_timeout=0.3) as connection:
        assert await read(connection, 60) == [str(n) for n in range(60)]
        assert connection.latency > 0  # a pong came back through the lane


async def test_after_a_missed_keepalive_no_more_frames_are_read():
    """The server streams on but never answers a ping: websockets fails the connection
    (1011) and waits a moment for the server's close; nothing read then is passed on."""
    sent = asyncio.Event()

    async def script(reader, writer, head):
        writer.write(head)
        for n in range(200):
            writer.write(frame(Opcode.TEXT, str(n)))
            await asyncio.sleep(0.01)
        sent.set()

    async with upstream(script, ping_interval=0.1, ping_timeout=0.2) as connection:
        read_while_failed = 0
        with pytest.raises(ConnectionClosedError) as closed:
            while True:
                await connection.next_frame()
                if connection.protocol.state is not State.OPEN:
                    read_while_failed += 1
        assert closed.value.sent is not None and closed.value.sent.code == 1011
        assert read_while_failed <= 2  # at most what was queued at the moment it failed
        assert not sent.is_set()


async def test_two_tasks_reading_at_once_is_an_error():
    async def script(reader, writer, head):
        writer.write(head)

    async with upstream(script) as connection:
        first = asyncio.create_task(connection.next_frame())
        await asyncio.sleep(0.01)
        with pytest.raises(ConcurrencyError):
            await connection.next_frame()
        first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
