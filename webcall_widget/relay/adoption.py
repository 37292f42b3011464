"""Taking a call over from a relay process that died or is stopping.

A call's owner (``Call.owner``) is the process holding its upstream socket. When that
process is gone (its lease lapsed, or it did not answer a visitor's resume) or stopping
(its lease says it drains), another process takes the call over (:func:`take_over`): it
claims the call, in one conditional UPDATE so that one process wins, and starts a bridge
that opens a new upstream socket for the same VoiceHub call (its ``callId`` and
``webCallSocketPath`` are on the ``Call``) and joins it again. The visitor's socket, if one
brought the call here, gets the conversation so far and the live call; otherwise the call
waits for its visitor as after any dropped socket. Where VoiceHub refuses the rejoin, or
``UPSTREAM.REJOIN`` is "never", the call ends as ``relay-lost``.

:func:`sweep` runs in every relay process after each renewal of its lease: calls whose
owner's lease lapsed are taken over (a call that may wait for its visitor, where rejoining
is allowed) or ended as ``relay-lost`` at once, so their lines are free.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer

from webcall_widget import leases, metrics
from webcall_widget.conf import Settings, get_settings
from webcall_widget.models import OPEN_STATUSES, Call, CallStatus
from webcall_widget.relay import records, tokens
from webcall_widget.relay.bridge import Bridge
from webcall_widget.relay.call import OpenSession
from webcall_widget.relay.mailbox import CallMailbox
from webcall_widget.relay.outcomes import Browser
from webcall_widget.relay.process import RelayProcess
from webcall_widget.relay.records import CallInfo, Recorder
from webcall_widget.voicehub.opening import open_session
from webcall_widget.voicehub.profile import Rejoin

logger = logging.getLogger("webcall_widget.relay")

LOST_DETAIL = "its relay process stopped (it stopped renewing its lease) and {why}"


@dataclass(frozen=True)
class Relaying:
    """How this process starts the bridges of its calls (the consumer's options)."""

    process: RelayProcess
    settings: Settings
    layer: BaseChannelLayer | None
    open_upstream: OpenSession = open_session
    recorder: Recorder | None = None

    def bridge(
        self,
        call: CallInfo,
        browser: Browser | None,
        grant: tokens.Grant | None,
        *,
        adopting: bool = False,
        previous_alive: bool = False,
    ) -> Bridge:
        return Bridge(
            call,
            browser,
            self.settings,
            grant=grant,
            mailbox=CallMailbox(self.layer) if self.layer is not None else None,
            calls=self.process.calls,
            open_upstream=self.open_upstream,
            recorder=self.recorder,
            adopting=adopting,
            previous_alive=previous_alive,
        )


def claim(call_id: uuid.UUID, previous: str, owner: str) -> bool:
    """Make ``owner`` the call's owner if ``previous`` still is and the call is open."""
    return (
        Call.objects.filter(pk=call_id, owner=previous, ended_at__isnull=True)
        .exclude(status=CallStatus.CREATED)
        .update(owner=owner)
        == 1
    )


aclaim = database_sync_to_async(claim)


async def take_over(
    call: CallInfo,
    relaying: Relaying,
    *,
    browser: Browser | None = None,
    grant: tokens.Grant | None = None,
    previous_alive: bool = False,
) -> Bridge | None:
    """Claim ``call`` from its owner and start a bridge that joins it again, held by
    ``browser`` (with ``grant``) or waiting for its visitor; None when another process
    claimed it first. ``previous_alive``: its owner is stopping, not gone, and is given a
    moment to let go."""
    me = relaying.process.id
    if not await aclaim(call.call_id, call.owner, me):
        return None
    logger.info("Call %s: taken over from relay process %s.", call.call_id, call.owner or "-")
    call = dataclasses.replace(call, owner=me)
    if grant is None:
        grant = tokens.Grant(call.call_id, call.origin, call.resumes)
    bridge = relaying.bridge(call, browser, grant, adopting=True, previous_alive=previous_alive)
    bridge.start()
    metrics.moved("adopted")
    return bridge


def orphaned(me: str) -> list[tuple[uuid.UUID, str]]:
    """Open calls whose owner's lease has lapsed: ``(call id, owner)``."""
    owned = Call.objects.open().exclude(owner__in=("", me))
    gone = leases.gone(owned.values_list("owner", flat=True).distinct())
    if not gone:
        return []
    return list(owned.filter(owner__in=gone).values_list("id", "owner"))


def lose(call_id: uuid.UUID, previous: str, why: str) -> bool:
    """End a call its owner ``previous`` left behind as ``relay-lost``, unless another
    process claimed it meanwhile."""
    outcome = records.Outcome(
        CallStatus.FAILED, "relay-lost", "relay_lost", LOST_DETAIL.format(why=why)
    )
    return records.finish(call_id, outcome, records.Counters(), owner=previous)


async def sweep(relaying: Relaying) -> int:
    """Take over or end the calls of processes that are gone; how many."""
    found = await database_sync_to_async(orphaned)(relaying.process.id)
    settings = get_settings()
    rejoin = settings.upstream.profile.rejoin is not Rejoin.NEVER
    handled = 0
    for call_id, owner in found:
        call = await records.aload_call(call_id, settings)
        if call is None or call.status not in OPEN_STATUSES or call.owner != owner:
            continue
        if rejoin and call.resume_seconds > 0:
            handled += await take_over(call, relaying) is not None
        else:
            why = (
                "VoiceHub does not let another socket join it"
                if not rejoin
                else ("the call does not wait for its visitor (RESUME_SECONDS 0)")
            )
            if await database_sync_to_async(lose)(call_id, owner, why):
                handled += 1
                metrics.moved("lost")
                logger.warning("Call %s: its relay process %s is gone; it ended.", call_id, owner)
    return handled
