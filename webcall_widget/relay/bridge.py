"""A relayed call that outlives its browser socket: the visitor leaves and comes back.

A call waits for its visitor for a grace period (``RESUME_SECONDS``, or the agent's own)
when their socket drops without an ``end``: the :class:`Bridge` keeps the upstream
session, leaves the ``audio`` channel (every joined channel costs credits), and holds
what is said (:mod:`.transcript`) until a socket comes back with the call's resume token
(:meth:`Bridge.attach`, from this process or, through the call's mailbox, from another
one). That socket gets ``ready``, the transcript so far (from the database, plus whatever
is not written yet) and then the live call; the audio channel is joined again with its
first audio frame. Past the grace period the call ends as ``visitor-disconnected``. A
socket that still holds the call when another one resumes it is told, and closed with
4410. Everything else about the call is :class:`~.call.RelayedCall`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from webcall_widget import metrics
from webcall_widget.conf import Settings
from webcall_widget.models import CallStatus
from webcall_widget.relay import outcomes, protocol, tokens
from webcall_widget.relay.call import (
    FINISH_STEP_SECONDS,
    Mailbox,
    OpenSession,
    RelayedCall,
)
from webcall_widget.relay.deadlines import VISITOR_GONE
from webcall_widget.relay.lifecycle import Registry, registry
from webcall_widget.relay.outcomes import Browser
from webcall_widget.relay.protocol import CloseCode
from webcall_widget.relay.records import CallInfo, NewMessage, Outcome, Recorder
from webcall_widget.voicehub.opening import open_session
from webcall_widget.voicehub.profile import Rejoin

logger = logging.getLogger("webcall_widget.relay")

# How long a process that takes a call over waits for the one it takes it from (which is
# stopping) to write what it holds and let go, before it replays the conversation.
RELEASE_WAIT_SECONDS = 2.0
# A stopping process waits this long at most for the agent's answer before it sends the
# visitor on (:meth:`Bridge.hand_over`).
ANSWER_PATIENCE_SECONDS = 3.0


class Bridge(RelayedCall):
    """``grant`` is what the socket holding the call may resume (None: it may not)."""

    # An object of 30 attributes or more gets a dict of its own, 1.6 to 1.9 KiB where 29
    # share their class's keys in 0.3 KiB: with :class:`RelayedCall`'s in its dict, a
    # bridge's own attributes are slots (an idle call's memory, docs/performance.md).
    __slots__ = (
        "_attach_abandoned",
        "_attach_lock",
        "_attaching",
        "_grant",
        "_previous_alive",
        "_settled",
        "_suspended_at",
        "handing_over",
    )

    def __init__(
        self,
        call: CallInfo,
        browser: Browser | None,
        settings: Settings,
        *,
        open_upstream: OpenSession = open_session,
        recorder: Recorder | None = None,
        grant: tokens.Grant | None = None,
        mailbox: Mailbox | None = None,
        calls: Registry = registry,
        adopting: bool = False,
        previous_alive: bool = False,
    ) -> None:
        """``adopting``: taken over from another process (:mod:`.adoption`), which is still
        alive and stopping when ``previous_alive``."""
        super().__init__(
            call,
            browser,
            settings,
            open_upstream=open_upstream,
            recorder=recorder,
            mailbox=mailbox,
            calls=calls,
            adopting=adopting,
        )
        self._previous_alive = previous_alive
        self.handing_over = False  # this process stops: another one is to take the call
        self._grant = grant
        self._attaching: Browser | None = None  # a resumed socket getting the replay
        self._attach_abandoned = False
        self._attach_lock = asyncio.Lock()
        self._suspended_at: float | None = None
        # Done once the call is live (held, or waiting for its visitor) or over: a socket
        # that resumes it before then waits for it.
        self._settled: asyncio.Future[None] = self._loop.create_future()

    @property
    def resumable(self) -> bool:
        """Whether the call waits for its visitor when their socket drops."""
        return self.call.resume_seconds > 0 and self._grant is not None

    @property
    def suspended(self) -> bool:
        return self._suspended_at is not None

    def holds(self, browser: Browser) -> bool:
        """Whether ``browser`` is the socket holding the call (or about to)."""
        return browser is self.browser or browser is self._attaching

    def _resume_token(self) -> str | None:
        if not self.resumable:
            return None
        assert self._grant is not None
        return self._grant.token(self.call.resume_seconds)

    async def _renew_token(self) -> None:
        """A new resume token for the socket holding the call, before its last one expires."""
        token = self._resume_token()
        if token is not None:
            await self._tell(protocol.resume_frame(token))

    def _holder(self) -> Browser | None:
        return self.browser or self._attaching

    def _leaving(self) -> None:
        self._settle()
        if self._suspended_at is not None:
            self.counters.suspended_seconds += self._loop.time() - self._suspended_at
            self._suspended_at = None

    async def visitor_gone(self, browser: Browser | None = None) -> None:
        """A browser socket closed without an ``end``.

        When it held a live call that can be resumed, the call waits for the visitor
        (:meth:`attach`) for its grace period; otherwise it ends, without writing to the
        socket. A socket that no longer holds the call (one taken over) changes nothing.
        """
        if self.over():
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

    async def _suspend(self) -> None:
        """Wait for the visitor, without their socket, for the call's grace period."""
        self.browser = None
        self._suspended_at = self._loop.time()
        self.counters.suspensions += 1
        self._watch.visitor_away(self.call.resume_seconds)
        logger.info(
            "Call %s: the visitor's socket dropped; the call waits %ds for them.",
            self.label,
            self.call.resume_seconds,
        )
        if self.audio is not None:
            await self.audio.leave()

    async def attach(self, browser: Browser, grant: tokens.Grant) -> bool:
        """A socket takes the call up again with its resume token (already claimed).

        It gets ``ready`` (with the next resume token), the conversation so far in one
        ``transcript`` frame, whatever came while that was sent, and then the live call. A
        socket that still held the call is told that another one took it over and closed
        with 4410. False when the call is already over; when it ends while the replay is
        being sent, ``browser`` is told as it would have been otherwise.
        """
        await asyncio.shield(self._settled)
        async with self._attach_lock:
            if self.over() or not self._ready or self.handing_over:
                return False
            old, self.browser = self.browser, None  # from here on, messages are held
            self._grant = grant
            if old is not None:
                await self._step("tell the socket it was taken over", outcomes.taken_over(old))
            await self._take_up(browser)
            logger.info("Call %s: the visitor is back (resume %d).", self.label, grant.resumes)
            return True

    async def _take_up(self, browser: Browser) -> None:
        """``browser`` holds the call from now on, once it has the conversation so far."""
        self._attaching, self._attach_abandoned = browser, False
        self._leaving()
        self._watch.visitor_back()
        try:
            if not await self._replay_to(browser):
                return
            self.transcript.release_held()
            self.browser = browser
        finally:
            self._attaching = None
        self._watch.renew_token_from_now()
        if self._attach_abandoned:  # its socket closed while it got the replay
            await self._suspend()

    # moving between processes

    async def _went_live(self) -> None:
        if not self.adopting:
            await super()._went_live()
            self._settle()
            return
        async with self._attach_lock:
            if self._mailbox is not None:
                wait = RELEASE_WAIT_SECONDS if self._previous_alive else 0.0
                await self._step("release the previous owner", self._mailbox.supersede(wait))
            browser, self.browser = self.browser, None
            if browser is None:
                await self._suspend()
            else:
                await self._take_up(browser)
        self._settle()

    def _settle(self) -> None:
        if not self._settled.done():
            self._settled.set_result(None)

    async def join_layer_again(self) -> None:
        """Redis lost the channel layer's groups (a restart): the call's mailbox is in its
        group again, so that staff and other processes reach it."""
        if self._mailbox is not None and not self.over():
            await self._mailbox.join_again()

    async def hand_over(self) -> None:
        """This process stops: the browser holding the call is sent to resume on another
        process, which takes the call over and then has this one let go (:meth:`let_go`).
        Until then the call goes on here (what is said is written), without a browser.

        The browser is sent on once the agent has finished what it is saying and answered
        the visitor's last message (:data:`ANSWER_PATIENCE_SECONDS` at most): VoiceHub
        may drop what it was about to say on a socket another one took over."""
        if self.over() or self.handing_over:
            return
        self.handing_over = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ANSWER_PATIENCE_SECONDS):
                await self.transcript.agent_done()
        if self.over():
            return
        browser, self.browser = self.browser, None
        if browser is not None:
            await self._step("send the browser on", browser.close(CloseCode.MOVING))
        metrics.moved("handed_over")

    async def let_go(self) -> None:
        """Another process took the call over (or will, this one stopping): stop relaying
        it without ending it. What was said is written; VoiceHub is not told (the new
        socket keeps the call); a browser still here is sent to resume."""
        if self.over():
            return
        await self._stop_task()
        self._finished = True
        self._settle()
        self._watch.stop()
        try:
            upstream, self.upstream = self.upstream, None
            if upstream is not None:
                await self._step("drop the upstream socket", upstream.abort())
            await self._step("write the transcript", self.transcript.close())
            browser = self._holder()
            if browser is not None:
                await self._step("send the browser on", browser.close(CloseCode.MOVING))
            if self._mailbox is not None:
                await self._step("close its mailbox", self._mailbox.close())
            metrics.moved("released")
            logger.info("Call %s: let go; another relay process holds it.", self.label)
        finally:
            self._calls.unregister(self)

    async def _finish(self, outcome: Outcome) -> None:
        """As every call ends, unless another process took it over meanwhile (this one was
        taken for gone, but was only slow): then it lets go, and ends nothing there."""
        if not self.over() and self.call.owner and not await self._still_owner():
            await self.let_go()
            return
        await super()._finish(outcome)

    async def _still_owner(self) -> bool:
        try:
            async with asyncio.timeout(FINISH_STEP_SECONDS):
                return await self.recorder.owner_of(self.call_id) in ("", self.call.owner)
        except Exception:
            logger.exception("Call %s: could not read who holds it; ending it.", self.label)
            return True

    async def server_stopping(self, *, gone: Browser | None = None) -> None:
        """The server stops under the call. Where VoiceHub lets another socket join a call
        under way, the call is let go, for another process (or this one, restarted) to take
        over when the visitor comes back; otherwise it ends as a server stop."""
        if self.settings.upstream.profile.rejoin is Rejoin.NEVER:
            await super().server_stopping(gone=gone)
            return
        if gone is not None and gone is self.browser:
            self.browser = None
        await self.let_go()

    async def _server_gone(self) -> None:
        if self.handing_over or self.settings.upstream.profile.rejoin is not Rejoin.NEVER:
            await self.let_go()
        else:
            await super()._server_gone()

    async def _replay_to(self, browser: Browser) -> bool:
        """``ready``, the conversation so far, and what came while it was sent; False when
        the call ended meanwhile (and ``browser`` was told)."""
        stored = await self._stored_transcript()
        if self.adopting:
            self.transcript.seen(stored)
        if self.over():
            return False
        await browser.send_text(self._ready_frame(resumed=True))
        transcript = self.transcript
        replay, sent = transcript.replay(stored), transcript.held_total
        await browser.send_text(protocol.transcript_frame(replay))
        while sent < transcript.held_total and not self.over():
            since = transcript.held_since(sent)
            sent = transcript.held_total
            for message in since:
                await browser.send_text(message.frame())
        return not self.over()

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
