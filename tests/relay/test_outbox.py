"""The browser socket's outbox on its own: a writer the test holds up or lets go."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.relay.virtual_time import run
from webcall_widget.relay.outbox import IDLE_SECONDS, Outbox

FRAME = b"\x01\x00" * 320  # 20 ms at 16 kHz


class Socket:
    """Takes what the outbox writes, or holds every write until it is let go."""

    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []
        self.open = asyncio.Event()
        self.open.set()

    async def write(self, message: dict[str, Any]) -> None:
        await self.open.wait()
        self.written.append(message)

    def texts(self) -> list[str]:
        return [m["text"] for m in self.written if "text" in m]

    def audio(self) -> list[bytes]:
        return [m["bytes"] for m in self.written if "bytes" in m]


def test_frames_are_written_in_the_order_they_were_put():
    async def scenario() -> None:
        socket = Socket()
        outbox = Outbox(socket.write, max_audio_bytes=len(FRAME) * 50)
        outbox.put_text("a")
        outbox.put_bytes(FRAME)
        outbox.put_text("b")
        await outbox.flush()
        assert socket.written == [
            {"type": "websocket.send", "text": "a"},
            {"type": "websocket.send", "bytes": FRAME},
            {"type": "websocket.send", "text": "b"},
        ]
        await outbox.close()

    run(scenario())


def test_a_slow_socket_loses_the_oldest_audio_beyond_the_bound_and_keeps_every_text():
    async def scenario() -> None:
        socket = Socket()
        dropped: list[int] = []
        outbox = Outbox(socket.write, max_audio_bytes=len(FRAME) * 5, on_drop=dropped.append)
        socket.open.clear()
        outbox.put_bytes(b"first")  # the write in flight, held up
        await asyncio.sleep(0)
        frames = [bytes([n]) * len(FRAME) for n in range(20)]
        for n, frame in enumerate(frames):
            outbox.put_bytes(frame)
            outbox.put_text(f"message {n}")
            assert outbox.queued_audio_bytes <= len(FRAME) * 5
        socket.open.set()
        await outbox.flush()
        assert socket.audio() == [b"first", *frames[-5:]]
        assert socket.texts() == [f"message {n}" for n in range(20)]
        assert sum(dropped) == outbox.dropped_bytes == 15 * len(FRAME)
        await outbox.close()

    run(scenario())


def test_texts_keep_their_place_among_the_audio_that_stays():
    async def scenario() -> None:
        socket = Socket()
        outbox = Outbox(socket.write, max_audio_bytes=len(FRAME) * 2)
        socket.open.clear()
        outbox.put_bytes(b"first")
        await asyncio.sleep(0)
        frames = [bytes([n]) * len(FRAME) for n in range(4)]
        outbox.put_text("a")
        outbox.put_bytes(frames[0])
        outbox.put_text("b")
        for frame in frames[1:]:
            outbox.put_bytes(frame)
        outbox.put_text("c")
        socket.open.set()
        await outbox.flush()
        sent = [m.get("text", m.get("bytes")) for m in socket.written]
        assert sent == [b"first", "a", "b", frames[2], frames[3], "c"]
        await outbox.close()

    run(scenario())


def test_a_frame_larger_than_the_bound_is_still_sent():
    async def scenario() -> None:
        socket = Socket()
        outbox = Outbox(socket.write, max_audio_bytes=len(FRAME))
        outbox.put_bytes(FRAME * 4)
        await outbox.flush()
        assert socket.audio() == [FRAME * 4]
        assert outbox.dropped_bytes == 0
        await outbox.close()

    run(scenario())


def test_an_interruption_clears_the_audio_waiting_but_not_the_texts():
    async def scenario() -> None:
        socket = Socket()
        outbox = Outbox(socket.write, max_audio_bytes=len(FRAME) * 50)
        socket.open.clear()
        outbox.put_text("in flight")
        await asyncio.sleep(0)
        outbox.put_bytes(FRAME)
        outbox.put_text("kept")
        outbox.put_bytes(FRAME)
        outbox.clear_audio()
        assert outbox.queued_audio_bytes == 0
        socket.open.set()
        await outbox.flush()
        assert socket.written == [
            {"type": "websocket.send", "text": "in flight"},
            {"type": "websocket.send", "text": "kept"},
        ]
        assert outbox.dropped_bytes == 0  # cut off on purpose, not lost
        await outbox.close()

    run(scenario())


def test_a_socket_that_fails_stops_the_writer_says_so_once_and_ignores_what_comes_after():
    async def scenario() -> None:
        async def broken(message: dict[str, Any]) -> None:
            raise RuntimeError("the socket is gone")

        failures: list[BaseException] = []
        outbox = Outbox(broken, max_audio_bytes=len(FRAME) * 5, on_failed=failures.append)
        outbox.put_text("lost")
        outbox.put_bytes(FRAME)
        await outbox.flush()
        assert isinstance(outbox.failed, RuntimeError)
        assert failures == [outbox.failed]
        for _ in range(50):  # far past the bound: nothing is queued, nothing raises
            outbox.put_bytes(FRAME)
        outbox.put_text("after")
        assert outbox.queued_audio_bytes == 0
        await outbox.close()

    run(scenario())


def test_closing_ends_a_flush_that_waits_on_a_held_up_write():
    async def scenario() -> None:
        socket = Socket()
        outbox = Outbox(socket.write, max_audio_bytes=len(FRAME))
        socket.open.clear()
        outbox.put_text("held up")
        flushing = asyncio.create_task(outbox.flush())
        await asyncio.sleep(0.1)
        await outbox.close()
        await asyncio.wait_for(flushing, 1)
        assert socket.written == []

    run(scenario())


def test_closing_stops_the_writer_while_a_write_is_held_up():
    async def scenario() -> None:
        socket = Socket()
        outbox = Outbox(socket.write, max_audio_bytes=len(FRAME))
        socket.open.clear()
        outbox.put_text("never written")
        await asyncio.sleep(0)
        await outbox.close()
        assert socket.written == []

    run(scenario())


async def test_one_audio_frame_in_fifty_is_timed_from_its_queueing_to_its_write():
    written: list[dict] = []
    timed: list[float] = []

    async def write(message):
        written.append(message)

    outbox = Outbox(write, max_audio_bytes=10**6, on_latency=timed.append)
    for n in range(120):
        outbox.put_bytes(bytes([n % 256]) * 4)
        await outbox.flush()  # as frames come, 20 ms apart
    await outbox.close()
    assert len(written) == 120
    assert len(timed) == 2 and all(seconds >= 0 for seconds in timed)


def test_a_writer_with_nothing_to_write_goes_and_the_next_frame_brings_another():
    async def scenario():
        written: list[dict] = []

        async def write(message):
            written.append(message)

        outbox = Outbox(write, max_audio_bytes=10**6)
        outbox.put_text("first")
        await outbox.flush()
        first = outbox._task
        await asyncio.sleep(IDLE_SECONDS + 1)
        assert first is not None and first.done() and outbox._task is None
        outbox.put_text("second")
        await outbox.flush()
        assert [m["text"] for m in written] == ["first", "second"]
        await outbox.close()

    run(scenario())


def test_a_writer_kept_busy_stays_one_task_and_ends_once_the_frames_stop():
    async def scenario() -> None:
        socket = Socket()
        outbox = Outbox(socket.write, max_audio_bytes=10**6)
        outbox.put_bytes(FRAME)
        await outbox.flush()
        writer = outbox._task
        for _ in range(int(3 * IDLE_SECONDS / 0.1)):
            await asyncio.sleep(0.1)
            outbox.put_bytes(FRAME)
        await outbox.flush()
        assert outbox._task is writer
        await asyncio.sleep(2 * IDLE_SECONDS + 0.1)
        assert writer is not None and writer.done() and outbox._task is None
        assert len(socket.audio()) == 1 + int(3 * IDLE_SECONDS / 0.1)
        await outbox.close()

    run(scenario())
