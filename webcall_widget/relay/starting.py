"""A new call's bridge started on the visitor's socket, whichever way the call was made.

A socket at ``<SOCKET_PATH><connect token>/`` takes up a call the create-call endpoint
made (:func:`connect`): the token is read (4401) and claimed once (4409), the call loaded
and checked (:mod:`.admission`), and a voice call refused on a process at capacity (4429).

A start socket goes from the visitor's choice to ``ready`` in one round trip.

The widget opens ``<SOCKET_PATH>start/<slug>/`` when its panel opens (no call yet, no
credit spent), and sends ``{"type": "start", "mode": ...}`` when the visitor picks a
mode. The call is created as the create-call endpoint creates it (:mod:`webcall_widget.calls`:
the same limits, VoiceHub, the same record), claimed for this process at once (no connect
token), and its bridge starts on this socket: the next frame is ``ready``. The endpoint
stays, for sites and scripts that create calls over HTTP.

A start socket is checked as that endpoint checks its request: the agent (4404, 4503),
the page's origin (4403), and, at ``start``, who may call (4406), the mode (4400), the
limits (4429, the error frame's ``retryAfter`` in seconds) and VoiceHub (4502). It waits
:data:`WAIT_SECONDS` at most for its ``start`` (then 4408): the widget opens another one
when it needs one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from channels.db import database_sync_to_async

from webcall_widget import access, calls, limits, metrics, origins
from webcall_widget.conf import Settings
from webcall_widget.http import client_address
from webcall_widget.models import Agent, CallStatus
from webcall_widget.relay import admission, adoption, protocol, records, tokens
from webcall_widget.relay.admission import Refusal
from webcall_widget.relay.outcomes import Browser
from webcall_widget.relay.port import CallPort, HeldCall
from webcall_widget.relay.protocol import CloseCode
from webcall_widget.strings import visitor_message
from webcall_widget.voicehub.errors import VoiceHubError
from webcall_widget.voicehub.events import Mode

logger = logging.getLogger("webcall_widget.relay")

# How long a start socket waits for its start frame.
WAIT_SECONDS = 120.0


@dataclasses.dataclass(frozen=True)
class Refused:
    """A start refused: close with ``close_code`` after an error frame."""

    close_code: CloseCode
    code: str
    retry_after: int | None = None


class Waiting:
    """A start socket before its start: its agent, and how long it may wait (then 4408)."""

    def __init__(self, agent: Agent, socket: Browser, seconds: float) -> None:
        self.agent = agent
        self.socket = socket
        self._timer = asyncio.create_task(self._expire(seconds))

    async def _expire(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.socket.close(CloseCode.TIMEOUT)

    def cancel(self) -> None:
        if self._timer is not asyncio.current_task():
            self._timer.cancel()

    async def begin(
        self, mode: Mode, scope: dict[str, Any], relaying: adoption.Relaying
    ) -> CallPort | None:
        """The call, on this socket; None when it was refused (and the socket told)."""
        self.cancel()
        started = await start(self.socket, scope, self.agent, mode, relaying)
        if isinstance(started, Refused):
            metrics.refused(started.code)
            await refuse(self.socket, started.code, started.close_code, started.retry_after)
            return None
        return started


async def refuse(
    socket: Browser, code: str, close_code: CloseCode | None, retry_after: int | None = None
) -> None:
    """Tell a start socket why, and close it when ``close_code`` says so."""
    await socket.send_text(
        protocol.error_frame(code, visitor_message(code), retry_after=retry_after)
    )
    if close_code is not None:
        await socket.close(close_code)


def _agent(slug: str) -> Agent | None:
    return Agent.objects.filter(slug=slug).first()


aagent = database_sync_to_async(_agent)


async def admit(scope: dict[str, Any], slug: str) -> Agent | Refusal:
    """The agent a start socket may start calls with."""
    agent = await aagent(slug)
    if agent is None:
        return CloseCode.UNKNOWN_CALL, "agent_not_found"
    if not agent.is_active:
        return CloseCode.AGENT_DISABLED, "agent_disabled"
    headers = dict(scope.get("headers", []))
    origin = admission.origin_of(scope) or None
    host = headers.get(b"host", b"").decode("latin-1")
    if not origins.is_allowed(origin, host, agent.origin_list):
        logger.warning("Agent %s: start socket from origin %s refused.", agent.slug, origin)
        return CloseCode.ORIGIN_NOT_ALLOWED, "origin_not_allowed"
    return agent


async def start(
    socket: Browser,
    scope: dict[str, Any],
    agent: Agent,
    mode: Mode,
    relaying: adoption.Relaying,
) -> CallPort | Refused:
    """Create the call and start its bridge on ``socket``."""
    settings = relaying.settings
    refused = access.refusal(agent.access, scope.get("user"))
    if refused is not None:
        return Refused(CloseCode.ACCESS_DENIED, refused)
    if not agent.allows_mode(mode.value):
        return Refused(CloseCode.MALFORMED_FRAME, "mode_not_allowed")
    if mode.has_audio and admission.at_capacity(relaying.process.calls, settings):
        return Refused(CloseCode.RATE_LIMITED, "agent_busy")
    ip = _client_ip(scope, settings)
    visitor = calls.Visitor(ip, admission.origin_of(scope), scope.get("user"))
    try:
        call = await _create(agent, mode, visitor, settings, _site_url(scope), relaying.process.id)
    except limits.LimitExceeded as exc:
        return Refused(CloseCode.RATE_LIMITED, exc.code, exc.retry_after)
    except VoiceHubError as exc:
        return Refused(CloseCode.UPSTREAM_FAILED, exc.code)
    except Exception:  # the database or the cache does not answer (a restart, an outage)
        logger.exception("Agent %s: a call could not be started.", agent.slug)
        return Refused(CloseCode.UPSTREAM_FAILED, "relay_error")
    return _held(call, socket, visitor.origin, relaying)


async def connect(
    socket: Browser, scope: dict[str, Any], token: str, relaying: adoption.Relaying
) -> CallPort | Refusal:
    """The call the create-call endpoint made, on the socket its connect token opened."""
    settings, process = relaying.settings, relaying.process
    try:
        call_id = tokens.read(token, max_age=settings.connect_token_max_age)
    except tokens.TokenError as exc:
        logger.debug("A socket with a bad connect token was refused: %s.", exc)
        return CloseCode.BAD_TOKEN, "bad_token"
    call = await admission.load(scope, call_id, settings)
    if not isinstance(call, records.CallInfo):
        return call
    if not await aclaim(call_id, process.id):
        return CloseCode.TOKEN_USED, "token_used"
    call = dataclasses.replace(call, owner=process.id)
    if Mode(call.mode).has_audio and admission.at_capacity(process.calls, settings):
        await afinish(call.call_id, _BUSY, records.Counters())
        metrics.refused("agent_busy")
        return CloseCode.RATE_LIMITED, "agent_busy"
    return _held(call, socket, admission.origin_of(scope), relaying)


aclaim = database_sync_to_async(tokens.claim)
afinish = database_sync_to_async(records.finish)

_BUSY = records.Outcome(
    CallStatus.ENDED,
    "relay-busy",
    "agent_busy",
    "this process relayed as many voice calls as LIMITS.VOICE_CALLS_PER_PROCESS allows",
)


def _held(
    call: records.CallInfo, socket: Browser, origin: str, relaying: adoption.Relaying
) -> HeldCall:
    """The call's bridge, started, held by ``socket``."""
    bridge = relaying.bridge(call, socket, tokens.Grant(call.call_id, origin, call.resumes))
    bridge.start()
    return HeldCall(bridge, socket)


@database_sync_to_async
def _create(
    agent: Agent, mode: Mode, visitor: calls.Visitor, settings: Settings, site: str, owner: str
) -> records.CallInfo:
    """In one worker thread: the call created and claimed, read back as the relay needs."""
    base_url = calls.upstream_url(settings, site)
    call = calls.start(agent, mode, visitor, settings, base_url=base_url, claimed_by=owner)
    info = records.load_call(call.id, settings)
    assert info is not None
    return info


def _site_url(scope: dict[str, Any]) -> str:
    """This site's own URL, as the socket reached it (where a mounted sandbox answers)."""
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    host = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
    return f"{scheme}://{host}/"


def _client_ip(scope: dict[str, Any], settings: Settings) -> str | None:
    client = scope.get("client") or ("", 0)
    forwarded = dict(scope.get("headers", [])).get(b"x-forwarded-for", b"").decode("latin-1")
    return client_address(str(client[0]), forwarded, settings.trusted_proxies)
