"""One live call between a browser socket and VoiceHub.

The :class:`Bridge` owns the upstream session and exactly one task, which opens the
session, joins the mode's channels, tells the browser ``ready``, and then pumps upstream
events to the browser until either side ends the call. Browser frames arrive through
:meth:`Bridge.handle` from the consumer's own task and go straight upstream.

Every way a call can end goes through :meth:`Bridge._finish`, exactly once: it leaves the
channels (when VoiceHub did not end the call itself) and closes the upstream session,
writes the rest of the transcript, records the end on the ``Call``, and then, unless the
browser is already gone, tells it why and closes its socket with the matching code.
Nothing in here imports Channels; the consumer adapts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from webcall_widget.conf import Settings
from webcall_widget.models import CallStatus
from webcall_widget.relay import protocol, records
from webcall_widget.relay.activity import Activity
from webcall_widget.relay.protocol import CloseCode
from webcall_widget.relay.records import CallInfo, Counters, NewMessage, Outcome
from webcall_widget.strings import ERRORS
from webcall_widget.voicehub import errors
from webcall_widget.voicehub.events import (
    CHANNELS_FOR_MODE,
    Audio,
    AudioClear,
    CallEnded,
    Joined,
    Message,
    Mode,
    Role,
    UpstreamError,
    UpstreamEvent,
)
from webcall_widget.voicehub.session import UpstreamSession, open_session

logger = logging.getLogger("webcall_widget.relay")

# Frames the browser may send before the upstream has joined (about 5 s of audio).
MAX_EARLY_FRAMES = 250
# Typed messages remembered so that an upstream echo of them is not shown twice.
MAX_UNCONFIRMED = 32


class Browser(Protocol):
    """The browser side of a call, as the consumer provides it."""

    async def send_text(self, frame: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, code: int) -> None: ...


OpenSession = Callable[..., Awaitable[UpstreamSession]]


class Bridge:
    def __init__(
        self,
        call: CallInfo,
        browser: Browser,
        settings: Settings,
        *,
        open_upstream: OpenSession = open_session,
    ) -> None:
        self.call = call
        self.mode = Mode(call.mode)
        self.browser = browser
        self.settings = settings
        self._open_upstream = open_upstream
        self.upstream: UpstreamSession | None = None
        self.counters = Counters()
        self._ready = False
        self._early: deque[protocol.ClientFrame] = deque()
        self._unconfirmed: deque[str] = deque(maxlen=MAX_UNCONFIRMED)
        self._partials: dict[str, Message] = {}
        self._visitor_messages = 0
        self._task: asyncio.Task[None] | None = None
        self._activity = Activity(call.idle_seconds, asyncio.get_running_loop().time)
        self._finished = False
        self._writer = _TranscriptWriter(call)

    @property
    def label(self) -> str:
        return str(self.call.call_id)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"webcall-relay-{self.label}")

    async def _run(self) -> None:
        try:
            await self._connect()
            outcome = await self._pump()
        except errors.VoiceHubError as exc:
            outcome = _failure(exc)
            logger.warning("Call %s: upstream failed: %s", self.label, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Call %s: the relay failed unexpectedly.", self.label)
            outcome = Outcome(
                CallStatus.FAILED,
                "relay-error",
                "relay_error",
                visitor_message=str(errors.VoiceHubError.visitor_message),
                close_code=CloseCode.UPSTREAM_FAILED,
            )
        await self._finish(outcome, notify_browser=True)

    async def _connect(self) -> None:
        upstream_settings = self.settings.upstream
        self.upstream = await self._open_upstream(
            base_url=self.call.upstream_url,
            socket_path=self.call.upstream_socket_path,
            transport=upstream_settings.transport,
            names=upstream_settings.events,
            connect_timeout=upstream_settings.connect_timeout,
        )
        channels = tuple(c.value for c in CHANNELS_FOR_MODE[self.mode])
        await self.upstream.join(self.call.voicehub_call_id, channels)
        held: list[UpstreamEvent] = []
        try:
            async with asyncio.timeout(upstream_settings.join_timeout):
                while True:
                    event = await self.upstream.recv()
                    if isinstance(event, Joined):
                        break
                    if isinstance(event, UpstreamError):
                        raise errors.UpstreamConnectFailed(
                            f"upstream refused channel.join: {event.message}"
                        )
                    held.append(event)
        except TimeoutError as exc:
            raise errors.UpstreamJoinTimeout(
                f"channel.join not confirmed within {upstream_settings.join_timeout:g}s"
            ) from exc
        await records.amark_live(self.call.call_id)
        await self.browser.send_text(
            protocol.ready_frame(self.label, self.mode, upstream_settings.audio)
        )
        self._ready = True
        self._writer.start()
        logger.info("Call %s is live (%s).", self.label, self.mode.value)
        for event in held:
            await self._forward(event)
        while self._early:
            await self._send_upstream(self._early.popleft())

    async def _pump(self) -> Outcome:
        """Relay upstream events until the call ends, it runs too long, or goes idle."""
        assert self.upstream is not None
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + self.call.max_call_seconds
        activity = self._activity
        activity.message()  # the call just became live
        while True:
            deadline = min(ends_at, activity.last + self.call.idle_seconds)
            try:
                async with asyncio.timeout_at(deadline):
                    event = await self.upstream.recv()
            except TimeoutError:
                if loop.time() >= ends_at:
                    return _timeout("max-duration")
                if loop.time() >= activity.last + self.call.idle_seconds:
                    return _timeout("idle-timeout")
                continue  # the visitor was active meanwhile
            if isinstance(event, CallEnded):
                return Outcome(CallStatus.ENDED, event.reason or "agent-ended", by_upstream=True)
            if isinstance(event, Message):
                activity.message()
            elif isinstance(event, Audio):
                activity.audio(event.pcm)
            await self._forward(event)

    async def _forward(self, event: UpstreamEvent) -> None:
        if isinstance(event, Audio):
            self.counters.audio_bytes_out += len(event.pcm)
            await self.browser.send_bytes(event.pcm)
        elif isinstance(event, Message):
            await self._forward_message(event)
        elif isinstance(event, AudioClear):
            await self.browser.send_text(protocol.INTERRUPT_FRAME)
        elif isinstance(event, UpstreamError):
            logger.warning("Call %s: upstream error event: %s", self.label, event.message)
            await self.browser.send_text(
                protocol.error_frame("upstream_error", str(ERRORS["upstream_error"]))
            )

    async def _forward_message(self, message: Message) -> None:
        if message.role is Role.USER and message.final and self._is_echo(message.text):
            return
        if not message.final:
            self._partials[message.id] = message
        else:
            self._partials.pop(message.id, None)
            if message.role is Role.AGENT:
                self.counters.messages_from_agent += 1
            self._writer.add(NewMessage(message.role.value, message.text, message.id, True))
        await self.browser.send_text(
            protocol.message_frame(
                message.id, message.role.value, message.text, final=message.final
            )
        )

    def _is_echo(self, text: str) -> bool:
        """Whether VoiceHub is repeating a message the visitor typed (already shown)."""
        if self._unconfirmed and self._unconfirmed[0] == text.strip():
            self._unconfirmed.popleft()
            return True
        return False

    async def handle(self, frame: protocol.ClientFrame) -> None:
        """A frame from the browser; called from the consumer's task.

        Before the upstream has joined, frames wait in a short queue. ``End`` finishes
        the call from here.
        """
        if isinstance(frame, protocol.End):
            await self.end("visitor-ended")
            return
        if self._finished:
            return
        if isinstance(frame, protocol.AudioIn):
            self._activity.audio(frame.pcm)
        else:
            self._activity.message()
        if not self._ready:
            if len(self._early) >= MAX_EARLY_FRAMES:
                raise protocol.ProtocolError("not_ready", "The call is still connecting.")
            self._early.append(frame)
            return
        await self._send_upstream(frame)

    async def _send_upstream(self, frame: protocol.ClientFrame) -> None:
        assert self.upstream is not None
        try:
            if isinstance(frame, protocol.AudioIn):
                self.counters.audio_bytes_in += len(frame.pcm)
                await self.upstream.send_audio(frame.pcm)
            elif isinstance(frame, protocol.Text):
                await self.upstream.send_text(self.call.voicehub_call_id, frame.text)
                self._visitor_messages += 1
                self.counters.messages_from_visitor += 1
                self._unconfirmed.append(frame.text)
                message_id = f"visitor-{self._visitor_messages}"
                self._writer.add(NewMessage(Role.USER.value, frame.text, message_id, True))
                await self.browser.send_text(
                    protocol.message_frame(message_id, Role.USER.value, frame.text, final=True)
                )
        except errors.UpstreamClosed:
            # The pump sees the same closed socket and ends the call with the reason.
            logger.info("Call %s: dropped a frame, the upstream socket is closed.", self.label)

    async def end(
        self,
        reason: str,
        *,
        close_code: CloseCode = CloseCode.NORMAL,
        visitor_message: str = "",
    ) -> None:
        """End the call from this side and tell the browser it is over.

        A ``close_code`` other than 1000 (the browser broke the protocol) or a
        ``visitor_message`` makes the reason the call's error code as well.
        """
        await self._stop_task()
        notable = close_code is not CloseCode.NORMAL or bool(visitor_message)
        await self._finish(
            Outcome(
                CallStatus.ENDED,
                reason,
                reason.replace("-", "_") if notable else "",
                visitor_message=visitor_message,
                close_code=close_code,
            ),
            notify_browser=True,
        )

    async def visitor_gone(self) -> None:
        """The browser socket closed: end the call without writing to it."""
        await self._stop_task()
        await self._finish(Outcome(CallStatus.ENDED, "visitor-disconnected"), notify_browser=False)

    async def abandon(self) -> None:
        """The consumer was cancelled (the ASGI server is stopping): the browser can no
        longer be told, but the upstream is still left and closed and the call recorded."""
        await self._stop_task()
        await self._finish(
            Outcome(
                CallStatus.ENDED,
                "relay-stopped",
                "relay_stopped",
                "the relay was stopped while the call was live",
            ),
            notify_browser=False,
        )

    async def _stop_task(self) -> None:
        task = self._task
        if task is None or task is asyncio.current_task():
            return
        if not self._finished:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _finish(self, outcome: Outcome, *, notify_browser: bool) -> None:
        if self._finished:
            return
        self._finished = True
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            await _close_upstream(upstream, self.call.voicehub_call_id, self.mode, outcome)
        for partial in self._partials.values():
            self._writer.add(NewMessage(partial.role.value, partial.text, partial.id, False))
        self._partials.clear()
        await self._writer.close()
        await records.afinish(self.call.call_id, outcome, self.counters)
        if notify_browser:
            if outcome.visitor_message:
                await self.browser.send_text(
                    protocol.error_frame(outcome.error_code, outcome.visitor_message)
                )
            await self.browser.send_text(protocol.ended_frame(outcome.reason))
            await self.browser.close(outcome.close_code)
        logger.info("Call %s ended: %s.", self.label, outcome.reason)


async def _close_upstream(
    upstream: UpstreamSession, voicehub_call_id: str, mode: Mode, outcome: Outcome
) -> None:
    """Leave the channels when we end the call (each joined channel costs credits), then
    close the socket. After VoiceHub ended it there is nothing to leave; after the socket
    failed there is no one to say goodbye to, so it is dropped at once."""
    if outcome.status is CallStatus.FAILED:
        await upstream.abort()
        return
    if not outcome.by_upstream:
        channels = tuple(c.value for c in CHANNELS_FOR_MODE[mode])
        with contextlib.suppress(errors.UpstreamClosed):
            async with asyncio.timeout(2):
                await upstream.leave(voicehub_call_id, channels)
    await upstream.close()


def _timeout(reason: str) -> Outcome:
    return Outcome(
        CallStatus.ENDED,
        reason,
        "timeout",
        visitor_message=str(ERRORS["timeout"]),
        close_code=CloseCode.TIMEOUT,
    )


def _failure(exc: errors.VoiceHubError) -> Outcome:
    return Outcome(
        CallStatus.FAILED,
        exc.code.replace("_", "-"),
        exc.code,
        str(exc),
        str(exc.visitor_message),
        CloseCode.UPSTREAM_FAILED,
    )


class _TranscriptWriter:
    """Writes transcript messages in the background, so the pump never waits on the DB."""

    def __init__(self, call: CallInfo) -> None:
        self.call = call
        self._queue: list[NewMessage] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(
            self._run(), name=f"webcall-transcript-{self.call.call_id}"
        )

    def add(self, message: NewMessage) -> None:
        self._queue.append(message)
        self._wake.set()

    async def _run(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        batch, self._queue = self._queue, []
        if batch:
            await records.aadd_messages(self.call.call_id, batch)

    async def close(self) -> None:
        """Write whatever is still queued, then stop.

        The task is asked to stop rather than cancelled: a batch already on its way to
        the database must land before the last one is numbered.
        """
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self._flush()
