"""What one browser socket is sent, written by a task of its own.

The call's pump reads the upstream and hands each frame to the browser. Awaiting the
browser's socket there would let a visitor whose network is slower than the agent's
speech stall the whole call, and the audio would pile up upstream, seconds late. Instead
the pump puts frames in an :class:`Outbox` and moves on; its writer task sends them in
order. Text frames (messages, errors, the end) are always kept. Audio waiting beyond
``max_audio_bytes`` (about a second) is dropped, oldest first: late audio is worth less
than current audio, and memory stays bounded. ``on_drop`` hears of every drop, so that
the call can be told and the bytes counted.

How far this reaches depends on the ASGI server: Uvicorn's ``send`` waits while the
socket's write buffer is full, so a slow browser fills the outbox and audio is dropped
here. Daphne accepts every frame at once and buffers it in Twisted, out of the app's
sight: behind Daphne a slow browser grows the server's buffer instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger("webcall_widget.relay")

Write = Callable[[dict[str, Any]], Awaitable[None]]

# One audio frame in this many is timed from its queueing to its write (1 s of 20 ms frames).
SAMPLE_EVERY = 50
# A writer with nothing to write for this long ends; the next frame starts another (an
# idle call holds no task).
IDLE_SECONDS = 5.0


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


class Outbox:
    def __init__(
        self,
        write: Write,
        *,
        max_audio_bytes: int,
        on_drop: Callable[[int], None] | None = None,
        on_failed: Callable[[BaseException], None] | None = None,
        on_latency: Callable[[float], None] | None = None,
    ) -> None:
        """``on_failed`` hears of a write that raised: the socket is gone, and everything
        put afterwards is ignored. ``on_latency`` hears, for one audio frame in
        :data:`SAMPLE_EVERY`, how many seconds it waited here before it was written."""
        self._write = write
        self.max_audio_bytes = max_audio_bytes
        self._on_drop = on_drop
        self._on_failed = on_failed
        # A list: empty, it holds no buffer (a deque holds 0.7 KiB), and it is short.
        self._queue: list[dict[str, Any]] = []
        self._audio_bytes = 0
        self._wakeup: asyncio.Future[bool] | None = None
        self._idle: asyncio.Future[None] | None = None
        self._writing = False
        self._task: asyncio.Task[None] | None = None
        self.failed: BaseException | None = None
        self.dropped_bytes = 0
        self._on_latency = on_latency
        self._until_sample = SAMPLE_EVERY
        self._sample: tuple[dict[str, Any], float] | None = None

    def put_text(self, frame: str) -> None:
        self._put({"type": "websocket.send", "text": frame})

    def put_bytes(self, data: bytes) -> None:
        if self.failed is not None:
            return
        self._audio_bytes += len(data)
        message = {"type": "websocket.send", "bytes": data}
        self._until_sample -= 1
        if not self._until_sample and self._on_latency is not None:
            self._until_sample = SAMPLE_EVERY
            self._sample = (message, time.perf_counter())
        self._put(message)
        if self._audio_bytes > self.max_audio_bytes:
            self._drop_oldest_audio()

    def clear_audio(self) -> None:
        """Drop the audio not sent yet: the agent was interrupted."""
        if self._audio_bytes:
            self._queue = [m for m in self._queue if "bytes" not in m]
            self._audio_bytes = 0

    @property
    def queued_audio_bytes(self) -> int:
        return self._audio_bytes

    async def flush(self) -> None:
        """Wait until everything queued is written (or the socket failed)."""
        if not self._queue and not self._writing:
            return
        if self._idle is None or self._idle.done():
            self._idle = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._idle)

    async def close(self) -> None:
        """Stop the writer; what is still queued is dropped."""
        self._queue.clear()
        self._audio_bytes = 0
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait((task,))  # a cancellation of the caller still reaches it
        self._now_idle()

    def _put(self, message: dict[str, Any]) -> None:
        if self.failed is not None:
            return
        self._queue.append(message)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="webcall-outbox")
        elif (wakeup := self._wakeup) is not None:
            _resolve(wakeup, True)

    def _drop_oldest_audio(self) -> None:
        """Drop audio, oldest first, until what waits is within the bound; the newest frame
        stays, however large. Texts ahead of the dropped audio go back in front, in order:
        while a browser is behind, each new frame costs one drop, not a copy of the queue."""
        queue = self._queue
        excess = self._audio_bytes - self.max_audio_bytes
        texts: list[dict[str, Any]] = []
        dropped = taken = 0
        while dropped < excess and len(queue) - taken > 1:
            message = queue[taken]
            taken += 1
            data = message.get("bytes")
            if data is None:
                texts.append(message)
            else:
                dropped += len(data)
        queue[:taken] = texts
        self._audio_bytes -= dropped
        self.dropped_bytes += dropped
        if dropped and self._on_drop is not None:
            self._on_drop(dropped)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                while self._queue:  # dropping or clearing may replace the list
                    message = self._queue.pop(0)
                    data = message.get("bytes")
                    if data is not None:
                        self._audio_bytes -= len(data)
                    self._writing = True
                    await self._write(message)
                    self._writing = False
                    sample = self._sample
                    if sample is not None and sample[0] is message and self._on_latency:
                        self._sample = None
                        self._on_latency(time.perf_counter() - sample[1])
                self._now_idle()
                wakeup = self._wakeup = loop.create_future()
                timer = loop.call_later(IDLE_SECONDS, _resolve, wakeup, False)
                try:
                    if not await wakeup and not self._queue:
                        self._task = None  # nothing for a while: gone until the next put
                        return
                finally:
                    timer.cancel()
        except Exception as exc:
            logger.debug("A browser socket could not be written to: %r", exc)
            self.failed = exc
            self._queue.clear()
            self._audio_bytes = 0
            if self._on_failed is not None:
                self._on_failed(exc)
        finally:
            self._writing = False
            self._now_idle()

    def _now_idle(self) -> None:
        if self._idle is not None and not self._idle.done():
            self._idle.set_result(None)
