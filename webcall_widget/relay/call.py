"""One call relayed between a browser socket and VoiceHub.

A :class:`RelayedCall` owns the upstream session and one task, which opens the session,
joins the mode's channels, tells the browser ``ready``, and then pumps upstream events to
the browser until either side ends the call or one of its deadlines comes (:mod:`.watch`).
Browser frames arrive through :meth:`RelayedCall.take` and go straight upstream; what is
said goes through :mod:`.transcript`, the visitor's audio through :mod:`.audio_channel`.

Every way a call can end goes through :meth:`RelayedCall._finish`, exactly once: it leaves
the channels (unless VoiceHub ended the call) and closes the upstream session, writes the
rest of the transcript, records the end, tells the browser why and closes its socket, and
closes the call's mailbox. Each step runs even when one before it failed; a failure is
logged once, with the call's id. A call another process took over is let go instead
(:meth:`RelayedCall.let_go`): nothing recorded, nothing left upstream.

What happens when the visitor's socket goes and comes back is :class:`~.bridge.Bridge`'s.
Time comes from the event loop only, so tests run a call on a loop whose clock they
control, with fakes for the sockets and the database. Nothing in here imports Channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable
from functools import partial
from typing import Any, Protocol

from webcall_widget import metrics
from webcall_widget.conf import Settings
from webcall_widget.models import CallStatus
from webcall_widget.relay import joining, late, outcomes, protocol
from webcall_widget.relay.audio_channel import AudioChannel
from webcall_widget.relay.drops import Drops
from webcall_widget.relay.framing import AgentAudio, visitor_frames
from webcall_widget.relay.lifecycle import Registry, registry
from webcall_widget.relay.outcomes import Browser
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
from webcall_widget.relay.transcript import Transcript
from webcall_widget.relay.watch import Watch
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
from webcall_widget.voicehub.opening import open_session
from webcall_widget.voicehub.session import UpstreamSession

logger = logging.getLogger("webcall_widget.relay")

# Frames the browser may send before the upstream has joined (about 5 s of audio).
MAX_EARLY_FRAMES = 250
# No single step of ending a call (a database write, leaving upstream) may hold it longer.
FINISH_STEP_SECONDS = 10.0


class Mailbox(Protocol):
    """The call's address for other processes (:mod:`.mailbox`): staff ending it, and
    sockets that resume it elsewhere. It runs from :meth:`RelayedCall.start` to the end of
    the call."""

    def open(self, call: Any) -> None: ...

    async def supersede(self, wait: float) -> None: ...

    async def join_again(self) -> None: ...

    async def close(self) -> None: ...


OpenSession = joining.OpenSession


class RelayedCall:
    def __init__(
        self,
        call: CallInfo,
        browser: Browser | None,
        settings: Settings,
        *,
        open_upstream: OpenSession = open_session,
        recorder: Recorder | None = None,
        mailbox: Mailbox | None = None,
        calls: Registry = registry,
        adopting: bool = False,
    ) -> None:
        """``adopting``: the call is under way, taken over from another process; its
        upstream socket joins it again."""
        self.call = call
        self.adopting = adopting
        self.mode = Mode(call.mode)
        # The socket that holds the call; None while the call waits for its visitor.
        self.browser: Browser | None = browser
        self.settings = settings
        self.recorder: Recorder = recorder or DatabaseRecorder(settings)
        self._open_upstream = open_upstream
        self._calls = calls
        self.upstream: UpstreamSession | None = None
        self.audio: AudioChannel | None = None
        self.counters = Counters()
        self.transcript = Transcript(call, self.recorder)
        self._ready = False
        self._early: list[protocol.ClientFrame] = []  # until ready
        self._task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._watch = Watch(
            self._loop,
            self.label,
            idle_seconds=call.idle_seconds,
            read_budget=lambda: self.recorder.budget_seconds_left(self.call),
            renew_token=self._renew_token,
        )
        self.drops = Drops(self.counters, self.label, self._loop.time)
        self._agent_audio = AgentAudio(settings.browser_audio)
        self._finished = False
        self._stopping = False  # this bridge cancelled its own task
        self.outcome: Outcome | None = None
        self._mailbox = mailbox

    @property
    def label(self) -> str:
        return str(self.call.call_id)

    @property
    def call_id(self) -> uuid.UUID:
        return self.call.call_id

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def over(self) -> bool:
        """Whether the call has ended (or is ending)."""
        return self._finished

    def holds(self, browser: Browser) -> bool:
        """Whether ``browser`` is the socket holding the call."""
        return browser is self.browser

    def start(self) -> None:
        self._calls.register(self)
        if self._mailbox is not None:
            self._mailbox.open(self)
        self._task = asyncio.create_task(self._run(), name=f"webcall-relay-{self.label}")

    async def _run(self) -> None:
        try:
            await self._connect()
            outcome = await self._live()
        except errors.UpstreamRejoinRefused as exc:
            outcome = outcomes.relay_lost(str(exc))
            metrics.moved("rejoin_refused")
            logger.warning("Call %s: could not take it over: %s", self.label, exc)
        except errors.VoiceHubError as exc:
            outcome = outcomes.upstream_failed(exc)
            metrics.upstream_error(exc.code)
            logger.warning("Call %s: upstream failed: %s", self.label, exc)
        except asyncio.CancelledError:
            if not self._stopping:
                # Not cancelled by this bridge: its event loop is shutting down (a server
                # that stops without a word to its application, with no socket to tell,
                # as with a call waiting for its visitor). It must still end cleanly.
                await self._server_gone()
            raise
        except Exception:
            logger.exception("Call %s: the relay failed unexpectedly.", self.label)
            outcome = outcomes.relay_error()
        await self._finish(outcome)

    async def _connect(self) -> None:
        channels = self._channels()
        upstream, held = await joining.open_and_join(
            self.call,
            self.settings.upstream,
            channels,
            open_upstream=self._open_upstream,
            report=self.counters.upstream,
            under_way=self.adopting,
        )
        self.upstream = upstream
        self.audio = AudioChannel(
            upstream,
            self.call.voicehub_call_id,
            self.label,
            joined=Channel.AUDIO.value in channels,
            drops=self.drops,
            tell=self._tell,
            frames=visitor_frames(self.settings),
        )
        self._ready = True
        self.transcript.writer.start()
        logger.info("Call %s is live (%s).", self.label, self.mode.value)
        await self._went_live()
        if not self.adopting:  # after ready: the visitor does not wait for the write
            await self.recorder.mark_live(self.call.call_id)
        for event in held:
            await self._forward(event)
        early, self._early = self._early, []
        for frame in early:
            await self._send_upstream(frame)

    def _channels(self) -> tuple[str, ...]:
        """The channels to join: the mode's (a subclass may join fewer)."""
        return tuple(c.value for c in CHANNELS_FOR_MODE[self.mode])

    async def _went_live(self) -> None:
        """The upstream joined: the browser may start."""
        metrics.call_started(self.mode.value)
        if self.browser is not None:
            await self.browser.send_text(self._ready_frame(resumed=False))

    async def _live(self) -> Outcome:
        """Pump upstream events until the call ends, or until one of its deadlines comes."""
        self._watch.start(
            max(0.0, self.call.max_call_seconds - self.call.live_for),
            renew_token=self.browser is not None,
        )
        pump = asyncio.create_task(self._pump(), name=f"webcall-pump-{self.label}")
        try:
            reason = await self._watch.until_expired_or(pump)
            if reason is not None:
                return outcomes.limit_reached(reason)
            return pump.result()
        finally:
            self._watch.stop()
            if not pump.done():
                pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait((pump,))

    async def _pump(self) -> Outcome:
        assert self.upstream is not None and self.audio is not None
        upstream, activity, audio = self.upstream, self._watch.activity, self.audio
        while True:
            event = await upstream.recv()
            if isinstance(event, CallEnded):
                reason = clip(event.reason or "agent-ended", REASON_LENGTH)
                return Outcome(CallStatus.ENDED, reason, by_upstream=True)
            if isinstance(event, Joined):
                await audio.confirmed(event)
                continue
            if isinstance(event, Message):
                activity.message()
            elif isinstance(event, Audio):
                activity.audio(event.pcm)
            await self._forward(event)

    async def _forward(self, event: UpstreamEvent) -> None:
        browser = self.browser
        if isinstance(event, Audio):
            if browser is not None:  # nobody to play it to while the visitor is away
                self.counters.audio_bytes_out += len(event.pcm)
                await self._agent_audio.send(event.pcm, browser.send_bytes)
        elif isinstance(event, Message):
            shown = self.transcript.heard(event)
            if shown is not None:
                if shown.final and event.role is Role.AGENT:
                    self.counters.messages_from_agent += 1
                await self._show(shown)
        elif isinstance(event, AudioClear):
            self._agent_audio.clear()
            if browser is not None:
                await browser.send_text(protocol.INTERRUPT_FRAME)
        elif isinstance(event, UpstreamError):
            logger.warning("Call %s: upstream error event: %s", self.label, event.message)
            await self._tell(protocol.error_frame("upstream_error", str(ERRORS["upstream_error"])))

    async def _show(self, message: NewMessage) -> None:
        """A transcript message to the visitor, or held for them while they are away."""
        browser = self.browser
        if browser is None:
            self.transcript.hold(message)
        else:
            await browser.send_text(message.frame())

    async def _tell(self, frame: str) -> None:
        """A frame for the visitor, if a socket holds the call."""
        if self.browser is not None:
            await self.browser.send_text(frame)

    # the browser's frames

    async def take(self, browser: Browser, frame: protocol.ClientFrame) -> None:
        """A frame from ``browser``, which is ignored unless it holds the call. A refused
        frame is answered with an error frame, and ends the call when it must."""
        if not self.holds(browser):
            return
        try:
            await self.handle(frame)
        except protocol.ProtocolError as exc:
            await self.refuse(browser, exc)
        except Exception:
            logger.exception("Call %s: a browser frame broke the relay.", self.label)
            await self.end_with(outcomes.relay_error())

    async def refuse(
        self, browser: Browser, exc: protocol.ProtocolError, *, reason: str | None = None
    ) -> None:
        """Tell ``browser`` why its frame was refused; end the call if the frame must
        (as ``reason``, by default the error's code). Nothing for a socket that no longer
        holds the call."""
        if not self.holds(browser):
            return
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
            self._watch.activity.audio(frame.pcm)
        else:
            self._watch.activity.message()
        if not self._ready:
            if len(self._early) >= MAX_EARLY_FRAMES:
                raise protocol.ProtocolError("not_ready", "The call is still connecting.")
            self._early.append(frame)
            return
        await self._send_upstream(frame)

    async def _send_upstream(self, frame: protocol.ClientFrame) -> None:
        assert self.upstream is not None and self.audio is not None
        try:
            if isinstance(frame, protocol.AudioIn):
                await self.audio.send(frame.pcm)
            elif isinstance(frame, protocol.Text):
                await self._send_typed(frame)
        except errors.UpstreamClosed:
            # The pump sees the same closed socket and ends the call with the reason.
            logger.info("Call %s: dropped a frame, the upstream socket is closed.", self.label)

    async def _send_typed(self, frame: protocol.Text) -> None:
        assert self.upstream is not None
        typed = self.transcript.typed
        if typed.already_sent(frame.id):
            assert frame.id is not None
            await self._show(NewMessage(Role.USER.value, frame.text, frame.id, True))
            return
        await self.upstream.send_text(self.call.voicehub_call_id, frame.text)
        self.counters.messages_from_visitor += 1
        message_id = typed.sent(frame.text, frame.id)
        await self._show(self.transcript.typed_message(frame.text, message_id))

    def dropped_audio(self, browser: Browser, size: int) -> str | None:
        """``browser``'s socket dropped ``size`` bytes of agent audio relayed to it: counted,
        whichever socket it was; the frame that tells the visitor, now and then, when
        ``browser`` holds the call (:mod:`.drops`)."""
        if self.holds(browser):
            return self.drops.to_visitor_told(size)
        self.drops.to_visitor(size)
        return None

    # what the browser is told of itself (resume tokens are the Bridge's)

    def _resume_token(self) -> str | None:
        return None

    async def _renew_token(self) -> None:
        pass

    def _ready_frame(self, *, resumed: bool) -> str:
        return protocol.ready_frame(
            self.label,
            self.mode,
            self.settings.browser_audio,
            resume_token=self._resume_token(),
            resume_seconds=self.call.resume_seconds,
            resumed=resumed,
        )

    # ending

    async def end(
        self,
        reason: str,
        *,
        close_code: protocol.CloseCode = protocol.CloseCode.NORMAL,
        visitor_message: str = "",
    ) -> None:
        """End the call from this side and tell the browser it is over
        (:func:`.outcomes.ended`)."""
        await self.end_with(
            outcomes.ended(reason, close_code=close_code, visitor_message=visitor_message)
        )

    async def end_with(self, outcome: Outcome) -> None:
        """End the call with ``outcome`` and tell the browser."""
        await self._stop_task()
        await self._finish(outcome)

    async def end_by_staff(self) -> None:
        await self.end("ended-by-staff", visitor_message=str(ERRORS["ended_by_staff"]))

    async def server_stopping(self, *, gone: Browser | None = None) -> None:
        """The ASGI server is stopping or reloading: leave upstream, record
        ``relay-stopped``, and tell the browser (unless the server already closed its
        socket, ``gone``) so that it can say the assistant is restarting."""
        if gone is not None and gone is self.browser:
            self.browser = None
        await self._stop_task()
        await self._finish(outcomes.server_stopped())

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
        self._watch.stop()
        self._leaving()
        try:
            upstream, self.upstream = self.upstream, None
            if upstream is not None:
                await self._step(
                    "leave the upstream",
                    outcomes.close_upstream(
                        upstream, self.call.voicehub_call_id, self.mode, outcome
                    ),
                )
            written = await self._step("write the transcript", self.transcript.close())
            await self._agent_audio.close()
            record_end = partial(
                self.recorder.finish, self.call_id, outcome, self.counters, owner=self.call.owner
            )
            recorded = await self._step("record the end", record_end())
            if not (written and recorded):  # the database does not answer: once it does
                rest = [] if written else [self.transcript.writer.write_rest]
                late.write_later(self.label, [*rest, *([] if recorded else [record_end])])
            browser = self._holder()
            if browser is not None:
                await self._step("tell the browser", outcomes.tell_browser(browser, outcome))
            if self._mailbox is not None:
                await self._step("close its mailbox", self._mailbox.close())
            metrics.call_ended(self.mode.value, outcome.reason)
            logger.info("Call %s ended: %s.", self.label, outcome.reason)
        finally:
            self._calls.unregister(self)

    async def _server_gone(self) -> None:
        """The event loop is shutting down under the call."""
        await self._finish(outcomes.server_stopped())

    def _leaving(self) -> None:
        """The call ends now (a subclass settles its accounts)."""

    def _holder(self) -> Browser | None:
        """The socket to tell how the call ended."""
        return self.browser

    async def _step(self, what: str, step: Awaitable[None]) -> bool:
        """Whether ``step`` was done."""
        try:
            async with asyncio.timeout(FINISH_STEP_SECONDS):
                await step
        except Exception:
            logger.exception("Call %s: could not %s while ending it.", self.label, what)
            return False
        return True
