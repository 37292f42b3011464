"""How a call can end (:class:`~webcall_widget.relay.records.Outcome`), and the last words
each side gets: the browser its error and ``ended`` frames, VoiceHub a leave and a close."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from webcall_widget.models import CallStatus
from webcall_widget.relay import protocol
from webcall_widget.relay.deadlines import BUDGET_EXHAUSTED, VISITOR_GONE
from webcall_widget.relay.protocol import CloseCode
from webcall_widget.relay.records import Outcome
from webcall_widget.strings import ERRORS
from webcall_widget.voicehub import errors
from webcall_widget.voicehub.events import CHANNELS_FOR_MODE, Mode
from webcall_widget.voicehub.session import UpstreamSession


class Browser(Protocol):
    """The browser side of a call: a socket of this process, or of another one."""

    async def send_text(self, frame: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, code: int) -> None: ...


def ended(
    reason: str, *, close_code: CloseCode = CloseCode.NORMAL, visitor_message: str = ""
) -> Outcome:
    """An end decided on this side. A ``close_code`` other than 1000 (the browser broke
    the protocol) or a ``visitor_message`` makes the reason the call's error code too."""
    notable = close_code is not CloseCode.NORMAL or bool(visitor_message)
    return Outcome(
        CallStatus.ENDED,
        reason,
        reason.replace("-", "_") if notable else "",
        visitor_message=visitor_message,
        close_code=close_code,
    )


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


def relay_lost(detail: str) -> Outcome:
    """The call could not move to this process: its own is gone, and VoiceHub would not let
    another socket join it."""
    return Outcome(
        CallStatus.FAILED,
        "relay-lost",
        "resume_failed",
        detail,
        visitor_message=str(ERRORS["resume_failed"]),
    )


def limit_reached(reason: str) -> Outcome:
    """One of the call's deadlines came (:mod:`.deadlines`)."""
    if reason == VISITOR_GONE:  # the grace period for a resume is over
        return Outcome(CallStatus.ENDED, VISITOR_GONE)
    code = "budget_exhausted" if reason == BUDGET_EXHAUSTED else "timeout"
    return Outcome(
        CallStatus.ENDED,
        reason,
        code,
        visitor_message=str(ERRORS[code]),
        close_code=CloseCode.TIMEOUT,
    )


def upstream_failed(exc: errors.VoiceHubError) -> Outcome:
    return Outcome(
        CallStatus.FAILED,
        exc.code.replace("_", "-"),
        exc.code,
        str(exc),
        # A code of a custom UPSTREAM.PROTOCOL may have no words of its own.
        str(ERRORS.get(exc.code, ERRORS["upstream_error"])),
        CloseCode.UPSTREAM_FAILED,
    )


async def tell_browser(browser: Browser, outcome: Outcome) -> None:
    """Why the call ended, if the visitor should know, then ``ended`` and the close."""
    try:
        if outcome.visitor_message:
            await browser.send_text(
                protocol.error_frame(outcome.error_code, outcome.visitor_message)
            )
        await browser.send_text(protocol.ended_frame(outcome.reason))
    finally:
        await browser.close(outcome.close_code)


async def taken_over(browser: Browser) -> None:
    """Another socket resumed the call this one held."""
    try:
        await browser.send_text(protocol.error_frame("taken_over", str(ERRORS["taken_over"])))
    finally:
        await browser.close(CloseCode.TAKEN_OVER)


async def close_upstream(
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
