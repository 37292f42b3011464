"""Audio cut to the frame length each leg takes.

The browser and the relay exchange frames of ``AUDIO_FRAME_MS`` (20 ms by default; 40 or
60 ms halve or third the number of frames, and so the relay's work per second of audio, at
the cost of that much delay). VoiceHub takes the visitor's audio in frames of
``UPSTREAM.FRAME_MS`` and sends the agent's in pieces of its own choosing. Where the
lengths differ, :class:`Frames` cuts a stream of PCM into frames of one size: a longer
piece is cut, shorter ones are joined, and what is left waits for the next piece; where
they are the same, the visitor's audio goes through untouched.

:class:`AgentAudio` joins the agent's pieces into the browser's frames when those are
longer than 20 ms, and lets the end of an utterance go one frame's time after its last
piece rather than hold it until the agent speaks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from webcall_widget.conf import Settings
from webcall_widget.voicehub.events import AudioFormat

logger = logging.getLogger("webcall_widget.relay")

# The shortest frame either leg uses; the browser's frames of this length need no joining.
SHORTEST_FRAME_MS = 20

Send = Callable[[bytes], Awaitable[None]]


class Frames:
    """A stream of PCM cut into frames of ``size`` bytes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._rest = b""

    def cut(self, pcm: bytes) -> list[bytes]:
        """The whole frames ``pcm`` completes; what is left waits for the next piece."""
        if not self._rest and len(pcm) == self.size:
            return [pcm]
        data = self._rest + pcm
        whole = len(data) - len(data) % self.size
        self._rest = data[whole:]
        return [data[i : i + self.size] for i in range(0, whole, self.size)]

    @property
    def waiting(self) -> bool:
        return bool(self._rest)

    def rest(self) -> bytes:
        """What is left, taken out."""
        rest, self._rest = self._rest, b""
        return rest


def visitor_frames(settings: Settings) -> Frames | None:
    """How the browser's frames become VoiceHub's: None where they already are."""
    upstream = settings.upstream.audio
    if settings.audio_frame_ms == upstream.frame_ms:
        return None
    return Frames(upstream.input_frame_bytes)


class AgentAudio:
    """The agent's audio on its way to the browser, in the browser's frames."""

    def __init__(self, browser: AudioFormat) -> None:
        joins = browser.frame_ms > SHORTEST_FRAME_MS
        self._frames = Frames(browser.output_frame_bytes) if joins else None
        self._after = browser.frame_ms / 1000
        self._timer: asyncio.TimerHandle | None = None
        self._sending: asyncio.Task[None] | None = None

    async def send(self, pcm: bytes, send: Send) -> None:
        frames = self._frames
        if frames is None:
            await send(pcm)
            return
        self._stop_timer()
        for frame in frames.cut(pcm):
            await send(frame)
        if frames.waiting:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._after, self._let_out, frames, send)

    def _let_out(self, frames: Frames, send: Send) -> None:
        """Nothing more came for a frame's time: the end of the utterance goes as it is."""
        self._timer = None
        self._sending = asyncio.ensure_future(send(frames.rest()))
        self._sending.add_done_callback(_sent)

    def clear(self) -> None:
        """The agent was cut off: what waits goes too."""
        self._stop_timer()
        if self._frames is not None:
            self._frames.rest()

    async def close(self) -> None:
        self.clear()
        sending, self._sending = self._sending, None
        if sending is not None and not sending.done():
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _sent(task: asyncio.Future[None]) -> None:
    """The end of an utterance was written, or the socket had gone (the call hears of
    that from the socket itself)."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        logger.debug("The end of the agent's utterance could not be sent: %r", exc)
