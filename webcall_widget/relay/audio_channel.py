"""The call's ``audio`` channel upstream, and the visitor's audio on its way into it.

Every joined channel costs credits, so the bridge leaves the audio channel while the
visitor is away (:meth:`AudioChannel.leave`) and joins it again with their first audio
frame when they are back; frames wait, a few seconds' worth, until VoiceHub confirms the
join (:meth:`AudioChannel.confirmed`). Audio VoiceHub reads slower than it comes is
dropped (:mod:`.drops`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from webcall_widget.relay.drops import Drops
from webcall_widget.relay.framing import Frames
from webcall_widget.voicehub import errors
from webcall_widget.voicehub.events import Channel, Joined
from webcall_widget.voicehub.session import UpstreamSession

logger = logging.getLogger("webcall_widget.relay")

# Frames that wait for the audio channel's join (about 5 s of audio).
MAX_WAITING_FRAMES = 250


class AudioChannel:
    """``tell`` sends a frame to the browser holding the call, if one does."""

    def __init__(
        self,
        upstream: UpstreamSession,
        voicehub_call_id: str,
        label: str,
        *,
        joined: bool,
        drops: Drops,
        tell: Callable[[str], Awaitable[None]],
        frames: Frames | None = None,
    ) -> None:
        """``frames``: how the browser's frames become VoiceHub's (None: as they are)."""
        self._upstream = upstream
        self._call_id = voicehub_call_id
        self._label = label
        self.joined = joined
        self._joining = False
        self._waiting: deque[bytes] | None = None  # while the channel is joined again
        self._drops = drops
        self._tell = tell
        self._frames = frames

    async def send(self, pcm: bytes) -> None:
        if not self.joined:
            await self._wait(pcm)
            return
        if self._frames is None:
            await self._send(pcm)
        else:
            for frame in self._frames.cut(pcm):
                await self._send(frame)

    async def _send(self, pcm: bytes) -> None:
        if await self._upstream.send_audio(pcm):
            self._drops.counters.audio_bytes_in += len(pcm)
            return
        notice = self._drops.to_voicehub(len(pcm))
        if notice is not None:
            await self._tell(notice)

    async def _wait(self, pcm: bytes) -> None:
        """Audio from a visitor who came back: join the channel again, keep the frames."""
        if self._waiting is None:
            self._waiting = deque(maxlen=MAX_WAITING_FRAMES)
        self._waiting.append(pcm)
        if self._joining:
            return
        self._joining = True
        logger.info("Call %s: joining the audio channel again.", self._label)
        await self._upstream.join(self._call_id, (Channel.AUDIO.value,))

    async def confirmed(self, event: Joined) -> None:
        """VoiceHub confirmed a join; the waiting frames go if it was the audio channel's."""
        if not self._joining or Channel.AUDIO.value not in event.channels:
            return
        self._joining = False
        self.joined = True
        waiting, self._waiting = self._waiting or deque(), None
        while waiting:
            await self.send(waiting.popleft())

    async def leave(self) -> None:
        member = self.joined or self._joining
        self.joined = self._joining = False
        self._waiting = None
        if not member:
            return
        try:
            async with asyncio.timeout(2):
                await self._upstream.leave(self._call_id, (Channel.AUDIO.value,))
        except (errors.UpstreamClosed, TimeoutError) as exc:
            logger.info("Call %s: could not leave the audio channel (%s).", self._label, exc)
