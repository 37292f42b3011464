"""One live call between a browser socket and VoiceHub.

The :class:`Bridge` owns the upstream session and exactly one task, which opens the
session, joins the mode's channels, tells the browser ``ready``, and then pumps upstream
events to the browser until either side ends the call. Browser frames arrive through
:meth:`Bridge.handle` from the consumer's own task and go straight upstream.

A call outlives its browser socket for a grace period (``RESUME_SECONDS``, or the agent's
own): when the socket drops without an ``end``, the bridge keeps the upstream session,
leaves the ``audio`` channel (every joined channel costs credits), and keeps what the agent
says (:data:`MAX_HELD_MESSAGES` at most) until a socket comes back with the call's resume
token (:meth:`Bridge.attach`, from this process or, through
:class:`~webcall_widget.relay.control.CallMailbox`, from another one). That socket gets
``ready``, the transcript so far (from the database, plus whatever is not written yet) and
then the live call; the audio channel is joined again with its first audio frame. Past the
grace period the call ends as ``visitor-disconnected``. A socket that still holds the call
when another one resumes it is told, and closed with 4410.

Every way a call can end goes through :meth:`Bridge._finish`, exactly once: it leaves the
channels (when VoiceHub did not end the call itself) and closes the upstream session,
writes the rest of the transcript, records the end on the ``Call``, and then, when a
browser holds the call, tells it why and closes its socket with the matching code, and
closes the call's mailbox. Each of those steps runs even when an earlier one failed; a
failure is logged once, with the call's id.

The call's own deadlines (longest call, idle, the agent's daily budget) are watched by one
timer (:mod:`~webcall_widget.relay.deadlines`), not by a timeout around every upstream
read. The bridge reads time from its event loop only, so tests run it on a loop whose
clock they control; with a :class:`~webcall_widget.relay.records.Recorder` and fake
sockets, it needs no I/O at all. Nothing in here imports Channels; the consumer adapts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from webcall_widget.conf import Settings
from webcall_widget.models import CallStatus
from webcall_widget.relay import lifecycle, protocol, tokens
from webcall_widget.relay.activity import Activity
from webcall_widget.relay.deadlines import VISITOR_GONE, Deadlines
from webcall_widget.relay.protocol import CloseCode
from webcall_widget.relay.records import (
    REASON_LENGTH,
    CallInfo,
    Counters,
    DatabaseRecorder,
    NewMessage,
    Outcome,
    Recorder,
    clip,
)
from webcall_widget.spacing import Spacing
from webcall_widget.strings import ERRORS, visitor_message
from webcall_widget.voicehub import errors
from webcall_widget.voicehub.events import (
    CHANNELS_FOR_MODE,
    Audio,
    AudioClear,
    CallEnded,
    Channel,
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
# How often a live call re-reads its agent's remaining call-minute budget.
BUDGET_CHECK_SECONDS = 30.0
# No single step of ending a call (a database write, leaving upstream) may hold it longer.
FINISH_STEP_SECONDS = 10.0
# Messages kept while the visitor is away, for the replay when they come back (the
# transcript in the database has them too; these cover what is not written yet).
MAX_HELD_MESSAGES = 200
# The replay of a resumed call sends at most this many messages, the latest.
MAX_REPLAY_MESSAGES = 1000
# Ids of messages the visitor typed, remembered so that one sent again after a reconnect
# reaches the agent once.
MAX_SEEN_IDS = 256
# A visitor is told that audio is being dropped (their connection or VoiceHub's is slow)
# at most this often.
SLOW_NOTICE_SECONDS = 10.0


class Browser(Protocol):
    """The browser side of a call, as the consumer provides it."""

    async def send_text(self, frame: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, code: int) -> None: ...


class Mailbox(Protocol):
    """The call's address for other processes (:mod:`webcall_widget.relay.control`): staff
    ending it, and sockets that resume it elsewhere. It runs from :meth:`Bridge.start` to
    the end of the call."""

    def open(self, bridge: Bridge) -> None: ...

    async def close(self) -> None: ...


OpenSession = Callable[..., Awaitable[UpstreamSession]]


class Bridge:
    def __init__(
        self,
        call: CallInfo,
        browser: Browser,
        settings: Settings,
        *,
        open_upstream: OpenSession = open_session,
        recorder: Recorder | None = None,
        grant: tokens.Grant | None = None,
        mailbox: Mailbox | None = None,
    ) -> None:
        self.call = call
        self.mode = Mode(call.mode)
        # The socket that holds the call; None while the call waits for its visitor.
        self.browser: Browser | None = browser
        self.settings = settings
        self.recorder: Recorder = recorder or DatabaseRecorder(settings)
        self._open_upstream = open_upstream
        self.upstream: UpstreamSession | None = None
        self.counters = Counters()
        self._ready = False
        self._early: deque[protocol.ClientFrame] = deque()
        self._unconfirmed: deque[str] = deque(maxlen=MAX_UNCONFIRMED)
        self._partials: dict[str, Message] = {}
        self._visitor_messages = 0
        self._task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._activity = Activity(call.idle_seconds, self._loop.time)
        self._deadlines = Deadlines(ends_at=math.inf, idle_seconds=call.idle_seconds)
        self._expired: asyncio.Future[Outcome] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._budget_task: asyncio.Task[None] | None = None
        self._next_budget_check = math.inf
        self._finished = False
        self._stopping = False  # this bridge cancelled its own task
        self.outcome: Outcome | None = None
        self._writer = _TranscriptWriter(call, self.recorder)
        # Resuming
        self._grant = grant  # what the socket holding the call may resume
        self._mailbox = mailbox
        self._attaching: Browser | None = None  # a resumed socket getting the replay
        self._attach_abandoned = False
        self._attach_lock = asyncio.Lock()
        self._suspended_at: float | None = None
        self._held: deque[NewMessage] = deque(maxlen=MAX_HELD_MESSAGES)
        self._held_total = 0
        self._held_dropped = 0
        self._seen_ids: deque[str] = deque(maxlen=MAX_SEEN_IDS)
        self._notices = Spacing(SLOW_NOTICE_SECONDS, self._loop.time)
        self._next_token = math.inf
        self._token_task: asyncio.Task[None] | None = None
        # The audio channel, left while the visitor is away and joined again on their
        # first audio frame; frames wait (a few seconds' worth) for the join.
        self._audio_joined = False
        self._audio_joining = False
        self._audio_waiting: deque[bytes] = deque(maxlen=MAX_EARLY_FRAMES)

    @property
    def label(self) -> str:
        return str(self.call.call_id)

    @property
    def resumable(self) -> bool:
        """Whether the call waits for its visitor when their socket drops."""
        return self.call.resume_seconds > 0 and self._grant is not None

    @property
    def suspended(self) -> bool:
        return self._suspended_at is not None

    def over(self) -> bool:
        """Whether the call has ended (or is ending)."""
        return self._finished

    def holds(self, browser: Browser) -> bool:
        """Whether ``browser`` is the socket holding the call (or about to)."""
        return browser is self.browser or browser is self._attaching

    def start(self) -> None:
        lifecycle.register(self)
        if self._mailbox is not None:
            self._mailbox.open(self)
        self._task = asyncio.create_task(self._run(), name=f"webcall-relay-{self.label}")

    async def _run(self) -> None:
        try:
            await self._connect()
            outcome = await self._live()
        except errors.VoiceHubError as exc:
            outcome = _failure(exc)
            logger.warning("Call %s: upstream failed: %s", self.label, exc)
        except asyncio.CancelledError:
            if not self._stopping:
                # Not cancelled by this bridge: its event loop is shutting down (a server
                # that stops without a word to its application, with no socket to tell,
                # as with a call waiting for its visitor). It must still end cleanly.
                await self._finish(server_stopped())
            raise
        except Exception:
            logger.exception("Call %s: the relay failed unexpectedly.", self.label)
            outcome = relay_error()
        await self._finish(outcome)

    async def _connect(self) -> None:
        upstream_settings = self.settings.upstream
        self.upstream = await self._open_upstream(
            base_url=self.call.upstream_url,
            socket_path=self.call.upstream_socket_path,
            profile=upstream_settings.profile,
            context=self.call.connect,
            report=self.counters.upstream,
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
        await self.recorder.mark_live(self.call.call_id)
        self._audio_joined = self.mode.has_audio
        if self.browser is not None:
            await self.browser.send_text(self._ready_frame(resumed=False))
        self._ready = True
        self._writer.start()
        logger.info("Call %s is live (%s).", self.label, self.mode.value)
        for event in held:
            await self._forward(event)
        while self._early:
            await self._send_upstream(self._early.popleft())

    async def _live(self) -> Outcome:
        """Pump upstream events until the call ends, or until one of its deadlines comes."""
        now = self._loop.time()
        self._activity.message()  # the call just became live
        self._deadlines.ends_at = now + self.call.max_call_seconds
        self._next_budget_check = now  # at once: the budget may be spent already
        if self.browser is not None and self._next_token == math.inf:
            self._next_token = now + tokens.RESUME_REFRESH_SECONDS
        self._expired = self._loop.create_future()
        pump = asyncio.create_task(self._pump(), name=f"webcall-pump-{self.label}")
        self._check_deadlines()
        try:
            await asyncio.wait((pump, self._expired), return_when=asyncio.FIRST_COMPLETED)
            if self._expired.done():
                return self._expired.result()
            return pump.result()
        finally:
            self._stop_watching()
            if not pump.done():
                pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait((pump,))

    async def _pump(self) -> Outcome:
        assert self.upstream is not None
        upstream, activity = self.upstream, self._activity
        while True:
            event = await upstream.recv()
            if isinstance(event, CallEnded):
                reason = clip(event.reason or "agent-ended", REASON_LENGTH)
                return Outcome(CallStatus.ENDED, reason, by_upstream=True)
            if isinstance(event, Joined):
                await self._audio_rejoined(event)
                continue
            if isinstance(event, Message):
                activity.message()
            elif isinstance(event, Audio):
                activity.audio(event.pcm)
            await self._forward(event)

    def _check_deadlines(self) -> None:
        """The deadline timer's callback: end the call, or wait for the next deadline."""
        self._timer = None
        expired = self._expired
        if expired is None or expired.done():
            return
        now = self._loop.time()
        reason = self._deadlines.expired(now, self._activity.last)
        if reason is not None:
            expired.set_result(_limit_reached(reason))
            return
        if now >= self._next_budget_check and self._budget_task is None:
            self._next_budget_check = now + BUDGET_CHECK_SECONDS
            self._budget_task = asyncio.create_task(self._check_budget())
        if now >= self._next_token and self._token_task is None:
            self._next_token = now + tokens.RESUME_REFRESH_SECONDS
            self._token_task = asyncio.create_task(self._send_fresh_token())
        wake = min(
            self._deadlines.next_check(self._activity.last),
            self._next_budget_check,
            self._next_token,
        )
        self._timer = self._loop.call_at(max(wake, now + 0.001), self._check_deadlines)

    def _rearm(self) -> None:
        """Look at the deadlines again now: one of them moved."""
        if self._expired is None or self._expired.done():
            return
        if self._timer is not None:
            self._timer.cancel()
        self._check_deadlines()

    async def _check_budget(self) -> None:
        try:
            left = await self.recorder.budget_seconds_left(self.call)
        except Exception:
            logger.exception("Call %s: could not read the agent's budget.", self.label)
            left = None
        finally:
            self._budget_task = None
        if left is not None:
            self._deadlines.budget_until = self._loop.time() + max(0.0, left)
            self._rearm()

    async def _send_fresh_token(self) -> None:
        """A new resume token for the socket holding the call, before its last one expires."""
        try:
            token = self._resume_token()
            browser = self.browser
            if token is not None and browser is not None:
                await browser.send_text(protocol.resume_frame(token))
        except Exception:
            logger.exception("Call %s: could not send a fresh resume token.", self.label)
        finally:
            self._token_task = None

    def _stop_watching(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._budget_task is not None:
            self._budget_task.cancel()
            self._budget_task = None
        if self._token_task is not None:
            self._token_task.cancel()
            self._token_task = None

    async def _forward(self, event: UpstreamEvent) -> None:
        if isinstance(event, Audio):
            browser = self.browser
            if browser is not None:  # nobody to play it to while the visitor is away
                self.counters.audio_bytes_out += len(event.pcm)
                await browser.send_bytes(event.pcm)
        elif isinstance(event, Message):
            await self._forward_message(event)
        elif isinstance(event, AudioClear):
            if self.browser is not None:
                await self.browser.send_text(protocol.INTERRUPT_FRAME)
        elif isinstance(event, UpstreamError):
            logger.warning("Call %s: upstream error event: %s", self.label, event.message)
            if self.browser is not None:
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
        await self._show(NewMessage(message.role.value, message.text, message.id, message.final))

    async def _show(self, message: NewMessage) -> None:
        """A transcript message to the visitor, or kept for them while they are away."""
        browser = self.browser
        if browser is None:
            if len(self._held) == self._held.maxlen:
                self._held_dropped += 1
            self._held.append(message)
            self._held_total += 1
            return
        await browser.send_text(_message_frame(message))

    def _is_echo(self, text: str) -> bool:
        """Whether VoiceHub is repeating a message the visitor typed (already shown)."""
        if self._unconfirmed and self._unconfirmed[0] == text.strip():
            self._unconfirmed.popleft()
            return True
        return False

    async def take(self, browser: Browser, frame: protocol.ClientFrame) -> None:
        """A frame from ``browser``, which is ignored unless it holds the call. A refused
        frame is answered with an error frame, and ends the call when it must."""
        if browser is not self.browser and browser is not self._attaching:
            return
        try:
            await self.handle(frame)
        except protocol.ProtocolError as exc:
            await self.refuse(browser, exc)
        except Exception:
            logger.exception("Call %s: a browser frame broke the relay.", self.label)
            await self.end_with(relay_error())

    async def refuse(
        self, browser: Browser, exc: protocol.ProtocolError, *, reason: str | None = None
    ) -> None:
        """Tell ``browser`` why its frame was refused; end the call if the frame must
        (as ``reason``, by default the error's code)."""
        await browser.send_text(protocol.error_frame(exc.code, visitor_message(exc.code)))
        if exc.close_code is not None:
            await self.end(reason or exc.code.replace("_", "-"), close_code=exc.close_code)

    async def handle(self, frame: protocol.ClientFrame) -> None:
        """A frame from the browser holding the call (see :meth:`take`).

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
                if not self._audio_joined:
                    await self._wait_for_audio(frame.pcm)
                    return
                await self._audio_upstream(frame.pcm)
            elif isinstance(frame, protocol.Text):
                if frame.id is not None and frame.id in self._seen_ids:
                    # Sent again after a reconnect, and already with the agent: confirm it.
                    await self._show(NewMessage(Role.USER.value, frame.text, frame.id, True))
                    return
                await self.upstream.send_text(self.call.voicehub_call_id, frame.text)
                self._visitor_messages += 1
                self.counters.messages_from_visitor += 1
                self._unconfirmed.append(frame.text)
                message_id = frame.id or f"visitor-{self._visitor_messages}"
                if frame.id is not None:
                    self._seen_ids.append(frame.id)
                message = NewMessage(Role.USER.value, frame.text, message_id, True)
                self._writer.add(message)
                await self._show(message)
        except errors.UpstreamClosed:
            # The pump sees the same closed socket and ends the call with the reason.
            logger.info("Call %s: dropped a frame, the upstream socket is closed.", self.label)

    async def _wait_for_audio(self, pcm: bytes) -> None:
        """Audio from a visitor who came back: join the audio channel again (left while
        they were away) and keep the frames until VoiceHub confirms."""
        assert self.upstream is not None
        self._audio_waiting.append(pcm)
        if self._audio_joining:
            return
        self._audio_joining = True
        logger.info("Call %s: joining the audio channel again.", self.label)
        await self.upstream.join(self.call.voicehub_call_id, (Channel.AUDIO.value,))

    async def _audio_rejoined(self, event: Joined) -> None:
        if not self._audio_joining or Channel.AUDIO.value not in event.channels:
            return
        assert self.upstream is not None
        self._audio_joining = False
        self._audio_joined = True
        while self._audio_waiting:
            await self._audio_upstream(self._audio_waiting.popleft())

    async def _audio_upstream(self, pcm: bytes) -> None:
        assert self.upstream is not None
        if await self.upstream.send_audio(pcm):
            self.counters.audio_bytes_in += len(pcm)
            return
        self.counters.audio_bytes_dropped_in += len(pcm)
        if self._notices.due("upstream_slow"):
            logger.warning(
                "Call %s: VoiceHub reads the visitor's audio slower than it comes; "
                "audio is dropped.",
                self.label,
            )
            if self.browser is not None:
                await self.browser.send_text(
                    protocol.error_frame("upstream_slow", visitor_message("upstream_slow"))
                )

    def browser_dropped_audio(self, size: int) -> str | None:
        """The browser's socket dropped ``size`` bytes of agent audio (it reads slower
        than the agent speaks). Returns the frame to tell the visitor, now and then."""
        self.count_dropped_audio(size)
        if not self._notices.due("connection_slow"):
            return None
        logger.info(
            "Call %s: the visitor's connection is slow; agent audio is dropped.", self.label
        )
        return protocol.error_frame("connection_slow", visitor_message("connection_slow"))

    def count_dropped_audio(self, size: int) -> None:
        """``size`` bytes of agent audio relayed to the browser did not reach it."""
        self.counters.audio_bytes_out -= size
        self.counters.audio_bytes_dropped_out += size

    async def _leave_audio(self) -> None:
        upstream = self.upstream
        waiting = self._audio_joined or self._audio_joining
        self._audio_joined = self._audio_joining = False
        self._audio_waiting.clear()
        if upstream is None or not waiting:
            return
        try:
            async with asyncio.timeout(2):
                await upstream.leave(self.call.voicehub_call_id, (Channel.AUDIO.value,))
        except (errors.UpstreamClosed, TimeoutError) as exc:
            logger.info("Call %s: could not leave the audio channel (%s).", self.label, exc)

    # the visitor's socket goes and comes back

    def _resume_token(self) -> str | None:
        if not self.resumable:
            return None
        assert self._grant is not None
        return self._grant.token(self.call.resume_seconds)

    def _ready_frame(self, *, resumed: bool) -> str:
        return protocol.ready_frame(
            self.label,
            self.mode,
            self.settings.upstream.audio,
            resume_token=self._resume_token(),
            resume_seconds=self.call.resume_seconds,
            resumed=resumed,
        )

    async def _suspend(self) -> None:
        """Wait for the visitor, without their socket, for the call's grace period."""
        now = self._loop.time()
        self.browser = None
        self._suspended_at = now
        self.counters.suspensions += 1
        self._next_token = math.inf
        self._deadlines.resume_until = now + self.call.resume_seconds
        self._rearm()
        logger.info(
            "Call %s: the visitor's socket dropped; the call waits %ds for them.",
            self.label,
            self.call.resume_seconds,
        )
        await self._leave_audio()

    async def attach(self, browser: Browser, grant: tokens.Grant) -> bool:
        """A socket takes the call up again with its resume token (already claimed).

        It gets ``ready`` (with the next resume token), the conversation so far in one
        ``transcript`` frame, whatever came while that was sent, and then the live call. A
        socket that still held the call is told that another one took it over and closed
        with 4410. False when the call is already over; when it ends while the replay is
        being sent, ``browser`` is told as it would have been otherwise.
        """
        async with self._attach_lock:
            if self._finished or not self._ready:
                return False
            old, self.browser = self.browser, None  # from here on, messages are held
            self._attaching, self._attach_abandoned = browser, False
            if self._suspended_at is not None:
                self.counters.suspended_seconds += self._loop.time() - self._suspended_at
                self._suspended_at = None
                self._deadlines.resume_until = math.inf
            self._grant = grant
            try:
                if old is not None:
                    await self._step("tell the socket it was taken over", _taken_over(old))
                stored = await self._stored_transcript()
                if self.over():  # it ended meanwhile, and told the socket
                    return True
                await browser.send_text(self._ready_frame(resumed=True))
                replay, sent = self._replay(stored), self._held_total
                await browser.send_text(protocol.transcript_frame(replay))
                while sent < self._held_total and not self.over():
                    since = list(self._held)[-(self._held_total - sent) :]
                    sent = self._held_total
                    for message in since:
                        await browser.send_text(_message_frame(message))
                if self.over():
                    return True
                self._held.clear()
                if self._held_dropped:
                    logger.warning(
                        "Call %s: %d message(s) came while the visitor was away and were not "
                        "kept for the replay (the transcript has them).",
                        self.label,
                        self._held_dropped,
                    )
                    self._held_dropped = 0
                self.browser = browser
            finally:
                self._attaching = None
            logger.info("Call %s: the visitor is back (resume %d).", self.label, grant.resumes)
            self._next_token = self._loop.time() + tokens.RESUME_REFRESH_SECONDS
            self._rearm()
            if self._attach_abandoned:  # its socket closed while it got the replay
                await self._suspend()
            return True

    async def _stored_transcript(self) -> list[NewMessage]:
        try:
            async with asyncio.timeout(FINISH_STEP_SECONDS):
                return await self.recorder.load_transcript(self.call.call_id)
        except Exception:
            logger.exception(
                "Call %s: could not read the transcript; the replay has only what this "
                "process holds.",
                self.label,
            )
            return []

    def _replay(self, stored: list[NewMessage]) -> list[dict[str, Any]]:
        """The conversation so far: the stored transcript, what is not written yet, what
        came while the visitor was away, and the messages still being written, one entry
        per message id (its latest version, at its first place)."""
        partials = (NewMessage(m.role.value, m.text, m.id, False) for m in self._partials.values())
        merged: dict[str, NewMessage] = {}
        sources: Iterable[NewMessage] = itertools.chain(
            stored, self._writer.unwritten(), self._held, partials
        )
        for index, message in enumerate(sources):
            merged[message.upstream_id or f"#{index}"] = message
        return transcript_entries(merged.values())

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
        notable = close_code is not CloseCode.NORMAL or bool(visitor_message)
        await self.end_with(
            Outcome(
                CallStatus.ENDED,
                reason,
                reason.replace("-", "_") if notable else "",
                visitor_message=visitor_message,
                close_code=close_code,
            )
        )

    async def end_with(self, outcome: Outcome) -> None:
        """End the call with ``outcome`` and tell the browser."""
        await self._stop_task()
        await self._finish(outcome)

    async def end_by_staff(self) -> None:
        await self.end("ended-by-staff", visitor_message=str(ERRORS["ended_by_staff"]))

    async def visitor_gone(self, browser: Browser | None = None) -> None:
        """A browser socket closed without an ``end``.

        When it held a live call that can be resumed, the call waits for the visitor
        (:meth:`attach`) for its grace period; otherwise it ends, without writing to the
        socket. A socket that no longer holds the call (one taken over) changes nothing.
        """
        if self._finished:
            return
        if browser is not None and browser is not self.browser:
            if browser is self._attaching:
                self._attach_abandoned = True
            return
        if self._ready and self.resumable and not self._stopping:
            await self._suspend()
            return
        await self._stop_task()
        self.browser = None
        await self._finish(Outcome(CallStatus.ENDED, VISITOR_GONE))

    async def server_stopping(self, *, gone: Browser | None = None) -> None:
        """The ASGI server is stopping or reloading: leave upstream, record
        ``relay-stopped``, and tell the browser (unless the server already closed its
        socket, ``gone``) so that it can say the assistant is restarting."""
        if gone is not None and gone is self.browser:
            self.browser = None
        await self._stop_task()
        await self._finish(server_stopped())

    async def _stop_task(self) -> None:
        task = self._task
        if task is None or task is asyncio.current_task():
            return
        if not self._finished:
            self._stopping = True
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _finish(self, outcome: Outcome) -> None:
        """End the call: every step runs, whatever happened to the one before."""
        if self._finished:
            return
        self._finished = True
        self.outcome = outcome
        self._stop_watching()
        if self._suspended_at is not None:
            self.counters.suspended_seconds += self._loop.time() - self._suspended_at
            self._suspended_at = None
        try:
            upstream, self.upstream = self.upstream, None
            if upstream is not None:
                await self._step(
                    "leave the upstream",
                    _close_upstream(upstream, self.call.voicehub_call_id, self.mode, outcome),
                )
            for partial in self._partials.values():
                self._writer.add(NewMessage(partial.role.value, partial.text, partial.id, False))
            self._partials.clear()
            await self._step("write the transcript", self._writer.close())
            await self._step("record the end", self._record_end(outcome))
            browser = self.browser or self._attaching
            if browser is not None:
                await self._step("tell the browser", _tell_browser(browser, outcome))
            if self._mailbox is not None:
                await self._step("close its mailbox", self._mailbox.close())
            logger.info("Call %s ended: %s.", self.label, outcome.reason)
        finally:
            lifecycle.unregister(self)

    async def _step(self, what: str, step: Awaitable[None]) -> None:
        try:
            async with asyncio.timeout(FINISH_STEP_SECONDS):
                await step
        except Exception:
            logger.exception("Call %s: could not %s while ending it.", self.label, what)

    async def _record_end(self, outcome: Outcome) -> None:
        """Record the end; one more try after a failure (a database restarting, a lock)."""
        try:
            await self.recorder.finish(self.call.call_id, outcome, self.counters)
        except Exception:
            logger.warning("Call %s: recording its end failed; trying once more.", self.label)
            await asyncio.sleep(0.5)
            await self.recorder.finish(self.call.call_id, outcome, self.counters)


async def _tell_browser(browser: Browser, outcome: Outcome) -> None:
    try:
        if outcome.visitor_message:
            await browser.send_text(
                protocol.error_frame(outcome.error_code, outcome.visitor_message)
            )
        await browser.send_text(protocol.ended_frame(outcome.reason))
    finally:
        await browser.close(outcome.close_code)


async def _taken_over(browser: Browser) -> None:
    try:
        await browser.send_text(protocol.error_frame("taken_over", str(ERRORS["taken_over"])))
    finally:
        await browser.close(CloseCode.TAKEN_OVER)


def _message_fields(message: NewMessage) -> dict[str, Any]:
    return {
        "id": message.upstream_id,
        "role": message.role,
        "text": message.text,
        "final": message.final,
    }


def transcript_entries(messages: Iterable[NewMessage]) -> list[dict[str, Any]]:
    """Stored messages as a ``transcript`` frame lists them (the latest, at most
    :data:`MAX_REPLAY_MESSAGES`)."""
    return [_message_fields(m) for m in list(messages)[-MAX_REPLAY_MESSAGES:]]


def _message_frame(message: NewMessage) -> str:
    return protocol.message_frame(
        message.upstream_id, message.role, message.text, final=message.final
    )


async def _close_upstream(
    upstream: UpstreamSession, voicehub_call_id: str, mode: Mode, outcome: Outcome
) -> None:
    """Leave the channels when we end the call (each joined channel costs credits), then
    close the socket. After VoiceHub ended it there is nothing to leave; after the socket
    failed there is no one to say goodbye to, so it is dropped at once, and so it is when
    leaving or closing fails."""
    if outcome.status is CallStatus.FAILED:
        await upstream.abort()
        return
    try:
        if not outcome.by_upstream:
            channels = tuple(c.value for c in CHANNELS_FOR_MODE[mode])
            with contextlib.suppress(errors.UpstreamClosed, TimeoutError):
                async with asyncio.timeout(2):
                    await upstream.leave(voicehub_call_id, channels)
        async with asyncio.timeout(3):
            await upstream.close()
    except BaseException:
        with contextlib.suppress(Exception):
            await upstream.abort()
        raise


def relay_error() -> Outcome:
    return Outcome(
        CallStatus.FAILED,
        "relay-error",
        "relay_error",
        "the relay failed unexpectedly (see the log)",
        visitor_message=str(ERRORS["relay_error"]),
        close_code=CloseCode.UPSTREAM_FAILED,
    )


def server_stopped() -> Outcome:
    return Outcome(
        CallStatus.ENDED,
        "relay-stopped",
        "relay_stopped",
        "the relay was stopped while the call was live",
        visitor_message=str(ERRORS["restarting"]),
        close_code=CloseCode.RESTARTING,
    )


def _limit_reached(reason: str) -> Outcome:
    if reason == VISITOR_GONE:  # the grace period for a resume is over
        return Outcome(CallStatus.ENDED, VISITOR_GONE)
    code = "budget_exhausted" if reason == "budget-exhausted" else "timeout"
    return Outcome(
        CallStatus.ENDED,
        reason,
        code,
        visitor_message=str(ERRORS[code]),
        close_code=CloseCode.TIMEOUT,
    )


def _failure(exc: errors.VoiceHubError) -> Outcome:
    return Outcome(
        CallStatus.FAILED,
        exc.code.replace("_", "-"),
        exc.code,
        str(exc),
        # A code of a custom UPSTREAM.PROTOCOL may have no words of its own.
        str(ERRORS.get(exc.code, ERRORS["upstream_error"])),
        CloseCode.UPSTREAM_FAILED,
    )


class TranscriptLost(Exception):
    """Transcript messages could not be written, even after retries."""


class _TranscriptWriter:
    """Writes transcript messages in the background, so the pump never waits on the DB.

    A failed write keeps its batch, in order, and is tried again with a growing pause; it
    never stops the call. Whatever is still unwritten when the call ends gets one last
    try, and is reported (counted, not shown) if that fails too.
    """

    RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)

    def __init__(self, call: CallInfo, recorder: Recorder) -> None:
        self.call = call
        self.recorder = recorder
        self._queue: list[NewMessage] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._failures = 0
        self._task: asyncio.Task[None] | None = None
        self._inflight: list[NewMessage] = []

    def start(self) -> None:
        self._task = asyncio.create_task(
            self._run(), name=f"webcall-transcript-{self.call.call_id}"
        )

    def add(self, message: NewMessage) -> None:
        self._queue.append(message)
        self._wake.set()

    def unwritten(self) -> list[NewMessage]:
        """Messages not in the database yet (some may be landing right now), in order."""
        return [*self._inflight, *self._queue]

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._closing:
                return
            if not await self._flush():
                pause = self.RETRY_SECONDS[min(self._failures, len(self.RETRY_SECONDS)) - 1]
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        while not self._closing:
                            await self._wake.wait()
                            self._wake.clear()
                self._wake.set()

    async def _flush(self) -> bool:
        """Write the queue; False (and the queue kept) when the write failed."""
        batch, self._queue = self._queue, []
        if not batch:
            return True
        self._inflight = batch
        try:
            await self.recorder.add_messages(self.call.call_id, batch)
        except Exception as exc:
            self._queue[:0] = batch
            self._failures += 1
            if self._failures == 1:
                logger.warning(
                    "Call %s: writing %d transcript message(s) failed (%s: %s); "
                    "they are kept and tried again.",
                    self.call.call_id,
                    len(batch),
                    type(exc).__name__,
                    exc,
                )
            return False
        finally:
            self._inflight = []
        if self._failures:
            logger.info("Call %s: the transcript is written again.", self.call.call_id)
        self._failures = 0
        return True

    async def close(self) -> None:
        """Write whatever is still queued, then stop.

        The task is asked to stop rather than cancelled: a batch already on its way to
        the database must land before the last one is numbered.
        """
        self._closing = True
        self._wake.set()
        if self._task is not None:
            task, self._task = self._task, None
            # Not ``await task``: when the event loop shuts down it cancels this task too,
            # and its CancelledError must not stop the call's end halfway.
            await asyncio.wait((task,))
            if not task.cancelled() and task.exception() is not None:
                logger.error(
                    "Call %s: the transcript writer failed.",
                    self.call.call_id,
                    exc_info=task.exception(),
                )
        if await self._flush():
            return
        await asyncio.sleep(0.5)
        if not await self._flush():
            raise TranscriptLost(f"{len(self._queue)} transcript message(s) were not written")
