"""The client connection to VoiceHub's socket: websockets', with a fast lane for reading.

Every 20 ms of agent audio is one or two WebSocket frames. Through websockets each went
through its frame parser (generators per frame), its message assembler and a queue. Here
the frames of a plain call (whole text and binary frames, pings and pongs) are cut out of
the bytes as they arrive and queued for :meth:`UpstreamConnection.next_frame`: at 50
calls the relay went from 66-70 % to 57-65 % of a core (``make bench-load``, old and new
code in alternating runs).

websockets still does everything else: the opening handshake (the lane starts right after
the response's blank line), answering pings (each control frame is handed to it whole, at
a frame boundary), keepalive, sending and closing. From the first frame the lane does not
take (a close, a fragmented message, an oversized or malformed frame) websockets reads the
rest of the connection, so it fails a broken one with the right close code; frames queued
before then are still read first.

It reads parts of websockets that are not public: the versions it was verified on are in
:mod:`webcall_widget.seams.websockets_lane`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConcurrencyError
from websockets.protocol import State

__all__ = ["UpstreamConnection"]

_FIN_TEXT, _FIN_BINARY = 0x81, 0x82  # a final frame, no extension bits
_PING, _PONG = 0x89, 0x8A
_MASK_BIT, _LENGTH = 0x80, 0x7F
_MAX_CONTROL = 125  # a longer control frame breaks the protocol
_END_OF_HEAD = b"\r\n\r\n"
_SWITCHING = b"HTTP/1.1 101 "
# Frames queued but not read yet past which the socket is not read (as websockets' own
# queue does), and below which it is read again.
QUEUE_HIGH, QUEUE_LOW = 64, 16


class UpstreamConnection(ClientConnection):
    """Read with :meth:`next_frame` (not ``recv``, which sees only what the lane left)."""

    # websockets' own attributes stay under the 30 from which an object's dict is its own
    # (1.6 KiB instead of 0.3): the lane's are slots.
    __slots__ = ("_frames", "_head", "_lane", "_max_frame", "_paused", "_unread", "_waiter")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head: bytearray | None = bytearray()  # the HTTP response, until it is whole
        self._lane = True  # False once websockets reads the rest
        self._unread = bytearray()  # the start of a frame not all here yet
        # Lists, not deques: an empty list holds no buffer, an empty deque 0.7 KiB, and
        # these hold a frame or two at a time (websockets appends and removes its waiters).
        self._frames: list[str | bytes] = []
        self.drain_waiters = []  # type: ignore[assignment]
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        limits = (self.protocol.max_message_size, self.protocol.max_fragment_size)
        self._max_frame = min((limit for limit in limits if limit is not None), default=None)

    def forget_handshake(self) -> None:
        """Let go of the handshake's request and the response's headers (3 KiB a
        connection), which nothing reads once the socket is open. The response itself
        stays: websockets takes the next event for one while there is none, and its parser
        holds it to the end."""
        self.request = None
        if self.response is not None:
            self.response.headers.clear()

    @property
    def in_lane(self) -> bool:
        """Whether frames are still cut out here, not by websockets."""
        return self._lane

    async def next_frame(self) -> str | bytes:
        """The next whole message: ``str`` for text, ``bytes`` for binary.

        Raises:
            websockets.exceptions.ConnectionClosed: as ``recv`` does, once every frame
                that arrived before the end has been read.
        """
        while True:
            if self._frames:
                frame = self._frames.pop(0)
                if self._paused and self._lane and len(self._frames) <= QUEUE_LOW:
                    self._paused = False
                    self.transport.resume_reading()
                return frame
            if not self._lane:
                return await self.recv()
            if self._waiter is not None:
                raise ConcurrencyError("another task is already reading this connection")
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def data_received(self, data: bytes) -> None:
        if not self._lane:
            super().data_received(data)
            return
        if self._head is not None:
            data = self._read_head(data)
            if not data:
                return
        self._unread += data
        if self.protocol.state is State.OPEN:
            del self._unread[: self._take_frames(self._unread)]
        else:
            # Failed (a missed keepalive, a bad handshake) or closing: websockets discards
            # or reads what follows as the state requires.
            self._lane = False
        if self._lane:
            self._wake()
        else:
            self._hand_over()

    def _hand_over(self) -> None:
        """websockets reads what is unread, and everything after it."""
        if self._paused:  # websockets' own queue watches what follows
            self._paused = False
            self.transport.resume_reading()
        self._wake()
        rest = bytes(self._unread)
        self._unread.clear()
        if rest:
            super().data_received(rest)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._lane = False  # next_frame ends with websockets' ConnectionClosed
        self._wake()

    def _read_head(self, data: bytes) -> bytes:
        """Give websockets the handshake's response; return what follows it."""
        assert self._head is not None
        head = self._head
        searched = max(0, len(head) - 3)
        head += data
        end = head.find(_END_OF_HEAD, searched)
        if end < 0:
            super().data_received(data)
            return b""
        end += len(_END_OF_HEAD)
        self._head = None
        if not head.startswith(_SWITCHING):  # websockets fails the handshake with its body
            self._lane = False
            super().data_received(data)
            return b""
        rest = len(head) - end
        super().data_received(data[: len(data) - rest])
        return data[len(data) - rest :]

    def _take_frames(self, buffer: bytearray) -> int:
        """Queue every whole frame at the front of ``buffer``; the bytes taken. Stops at a
        partial frame, or ends the lane at a frame it does not take."""
        taken, size, max_size = 0, len(buffer), self._max_frame
        frames = self._frames
        while size - taken >= 2:
            first, second = buffer[taken], buffer[taken + 1]
            length, start = second & _LENGTH, taken + 2
            if second & _MASK_BIT:  # a server never masks: websockets fails it
                self._lane = False
                break
            if length == 126:
                if size - start < 2:
                    break
                length, start = int.from_bytes(buffer[start : start + 2]), start + 2
            elif length == 127:
                if size - start < 8:
                    break
                length, start = int.from_bytes(buffer[start : start + 8]), start + 8
            end = start + length
            if first in (_FIN_BINARY, _FIN_TEXT):
                if max_size is not None and length > max_size:
                    self._lane = False
                    break
                if size < end:
                    break
                payload = bytes(buffer[start:end])
                if first == _FIN_TEXT:
                    try:
                        frames.append(payload.decode())
                    except UnicodeDecodeError:
                        self._lane = False
                        break
                else:
                    frames.append(payload)
            elif first in (_PING, _PONG) and length <= _MAX_CONTROL:
                if size < end:
                    break
                super().data_received(bytes(buffer[taken:end]))
                if self.protocol.state is not State.OPEN:  # it failed the connection
                    self._lane = False
                    taken = end
                    break
            else:
                self._lane = False
                break
            taken = end
        if len(frames) >= QUEUE_HIGH and not self._paused:
            self._paused = True
            self.transport.pause_reading()
        return taken

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done() and (self._frames or not self._lane):
            waiter.set_result(None)
