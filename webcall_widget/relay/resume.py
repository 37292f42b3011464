"""A socket that comes back with a resume token, and the call it finds.

The token is checked (signature, expiry, the page origin that held the call) and claimed
(once, from any process). Then the socket takes up the call where it is:

* held by this process: attached to its bridge (:meth:`~.bridge.Bridge.attach`);
* held by another process that answers: reached through the channel layer
  (:class:`~.remote.RemoteCall`);
* held by a process that is gone or stopping (its lease lapsed or says it drains, or it
  does not answer within the attach timeout): taken over here (:mod:`.adoption`);
* over: shown as it ended (:mod:`.over`).

Finding and reaching another process goes through Redis (the cache holds the leases, the
channel layer carries the call). When Redis does not answer (restarting), the socket cannot
take the call up: the token it claimed is given back and the socket is closed 4013, which
the widget answers by resuming again, a little later each time, within the call's grace
period. The call goes on where it is held meanwhile, waiting for its visitor. Once Redis
is back, empty, a missing lease or a silent owner proves nothing for a lease period (the
owner may not have written its lease again, nor its call's mailbox joined the call's group
again): the visitor is sent to try again rather than the call taken from a process that is
alive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from webcall_widget import leases, metrics
from webcall_widget.models import OVER_STATUSES
from webcall_widget.relay import admission, adoption, over, records, tokens
from webcall_widget.relay.admission import Refusal
from webcall_widget.relay.bridge import Bridge
from webcall_widget.relay.outcomes import Browser
from webcall_widget.relay.port import CallPort, HeldCall
from webcall_widget.relay.protocol import CloseCode
from webcall_widget.relay.remote import RemoteCall
from webcall_widget.voicehub.profile import Rejoin

logger = logging.getLogger("webcall_widget.relay")

aclaim_resume = database_sync_to_async(tokens.claim_resume)
alive = sync_to_async(leases.alive, thread_sensitive=False)


async def resume(
    socket: Browser,
    scope: dict[str, Any],
    token: str,
    relaying: adoption.Relaying,
    *,
    attach_timeout: float,
    switch: Callable[[CallPort], None],
) -> Refusal | CallPort | None:
    """The call's port for ``socket``; a refusal; or None when the socket was shown the
    call as over. ``switch`` gives the consumer the port of a call taken over later, when
    the process that held it did not answer."""
    settings = relaying.settings
    try:
        grant = tokens.read_resume(token)
    except tokens.TokenError as exc:
        logger.debug("A socket with a bad resume token was refused: %s.", exc)
        return CloseCode.BAD_TOKEN, "bad_token"
    call = await admission.load(scope, grant.call_id, settings)
    if not isinstance(call, records.CallInfo):
        return call
    origin = admission.origin_of(scope)
    if origin != grant.origin:
        logger.warning(
            "Call %s: a resume from origin %s refused (the call is %s's).",
            call.call_id,
            origin or "(none)",
            grant.origin or "(none)",
        )
        return CloseCode.ORIGIN_NOT_ALLOWED, "origin_not_allowed"
    if call.status in OVER_STATUSES:
        await over.show_over(socket, call.call_id, call.end_reason)
        return None
    claimed = await aclaim_resume(grant)
    if claimed is None:
        again = await records.aload_call(grant.call_id, settings)
        if again is not None and again.status in OVER_STATUSES:
            await over.show_over(socket, again.call_id, again.end_reason)
            return None
        return CloseCode.TOKEN_USED, "token_used"
    try:
        return await _take_up(socket, call, claimed, relaying, attach_timeout, switch)
    except Unreachable as exc:
        await _try_again_later(socket, claimed, exc)
        return None


class Unreachable(Exception):
    """Redis (the cache or the channel layer) did not answer: the process holding the call
    can be neither found nor reached just now."""


async def _try_again_later(socket: Browser, claimed: tokens.Grant, why: Unreachable) -> None:
    """The socket could not take the call up: its token is good again, and the widget is
    sent to resume once more (4013)."""
    logger.warning(
        "Call %s: a resume could not reach the process holding it (%s); the visitor is sent "
        "to try again.",
        claimed.call_id,
        why,
    )
    try:
        await database_sync_to_async(tokens.give_back)(claimed)
    except Exception:
        logger.exception(
            "Call %s: could not give a resume token back; the visitor's next resume is "
            "refused as token_used.",
            claimed.call_id,
        )
    await socket.close(CloseCode.MOVING)


def _unreachable(exc: Exception) -> Unreachable:
    return Unreachable(f"Redis does not answer: {type(exc).__name__}")


async def _take_up(
    socket: Browser,
    call: records.CallInfo,
    grant: tokens.Grant,
    relaying: adoption.Relaying,
    attach_timeout: float,
    switch: Callable[[CallPort], None],
) -> CallPort | None:
    held = relaying.process.calls.find(call.call_id)
    if isinstance(held, Bridge):
        if await held.attach(socket, grant):
            return HeldCall(held, socket)
        reason = held.outcome.reason if held.outcome else "relay-lost"
        await over.show_over(socket, call.call_id, reason)
        return None
    process = relaying.process
    try:
        found = await alive([call.owner, process.id])
    except Exception as exc:
        raise _unreachable(exc) from exc
    lease = found.get(call.owner)
    # This process's own lease gone too: the cache lost every lease (Redis restarted), and
    # the owner's says nothing until it writes it again; as for a while after that.
    doubtful = process.id not in found or process.leases_doubtful()
    gone = bool(call.owner) and lease is None and not doubtful
    moving = lease is not None and lease.get("draining") and _can_rejoin(relaying)
    if relaying.layer is None or gone or moving:
        return await _take_over(socket, call, grant, relaying, attach_timeout, switch, lease)
    return await _reach(
        socket, call, grant, relaying, attach_timeout, switch, take_over=not doubtful
    )


async def _reach(
    socket: Browser,
    call: records.CallInfo,
    grant: tokens.Grant,
    relaying: adoption.Relaying,
    attach_timeout: float,
    switch: Callable[[CallPort], None],
    *,
    take_over: bool = True,
) -> CallPort:
    """The call through the process that holds it; taken over if that one is silent,
    unless ``take_over`` is False (the leases were lost lately: the owner may be alive,
    its mailbox not back in the call's group yet), and then the visitor tries again."""

    async def owner_silent() -> CallPort | None:
        again = await records.aload_call(call.call_id, relaying.settings)
        if again is None or again.status in OVER_STATUSES:
            await over.show_over(socket, call.call_id, again.end_reason if again else "")
            return None
        if not take_over:
            why = "it did not answer, and the cache lost the leases lately"
            await _try_again_later(socket, grant, Unreachable(why))
            return None
        port = await _take_over(socket, again, grant, relaying, attach_timeout, switch, None)
        if port is not None:
            switch(port)
        return port

    assert relaying.layer is not None
    remote = RemoteCall(
        relaying.layer,
        call,
        socket,
        relaying.settings,
        attach_timeout=attach_timeout,
        take_over=owner_silent,
    )
    try:
        await remote.open(grant)
    except Exception as exc:
        raise _unreachable(exc) from exc
    return remote


async def _take_over(
    socket: Browser,
    call: records.CallInfo,
    grant: tokens.Grant,
    relaying: adoption.Relaying,
    attach_timeout: float,
    switch: Callable[[CallPort], None],
    lease: dict[str, Any] | None,
) -> CallPort | None:
    """The call taken over here from a process that is gone (``lease`` None) or stopping;
    reached where another process took it first; None when it cannot move
    (``REJOIN`` "never": it ends, and the socket is told)."""
    if not _can_rejoin(relaying):
        why = "VoiceHub does not let another socket join it (UPSTREAM.REJOIN)"
        if await database_sync_to_async(adoption.lose)(call.call_id, call.owner, why):
            metrics.moved("lost")
        await over.show_lost(socket, call.call_id)
        return None
    bridge = await adoption.take_over(
        call, relaying, browser=socket, grant=grant, previous_alive=lease is not None
    )
    if bridge is not None:
        return HeldCall(bridge, socket)
    if relaying.layer is None:
        await over.show_lost(socket, call.call_id)
        return None
    taken = await records.aload_call(call.call_id, relaying.settings)  # by another process
    assert taken is not None
    return await _reach(socket, taken, grant, relaying, attach_timeout, switch)


def _can_rejoin(relaying: adoption.Relaying) -> bool:
    return relaying.settings.upstream.profile.rejoin is not Rejoin.NEVER
