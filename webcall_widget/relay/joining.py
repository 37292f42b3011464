"""Opening a call's upstream socket and joining its channels, or joining them again.

A call taken over from another relay process (:mod:`.adoption`) is under way: VoiceHub
may refuse a second socket for it (``UPSTREAM.REJOIN``), and a refusal ends the call as
``relay-lost`` rather than as an upstream failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from webcall_widget.conf import UpstreamSettings
from webcall_widget.relay.records import CallInfo
from webcall_widget.voicehub import errors
from webcall_widget.voicehub.events import UpstreamEvent
from webcall_widget.voicehub.monitor import UpstreamReport
from webcall_widget.voicehub.profile import Rejoin
from webcall_widget.voicehub.session import UpstreamSession

OpenSession = Callable[..., Awaitable[UpstreamSession]]


async def open_and_join(
    call: CallInfo,
    settings: UpstreamSettings,
    channels: tuple[str, ...],
    *,
    open_upstream: OpenSession,
    report: UpstreamReport,
    under_way: bool,
) -> tuple[UpstreamSession, list[UpstreamEvent]]:
    """The open session, joined, and the events that came before the join's confirmation.

    Raises:
        UpstreamRejoinRefused: ``under_way``, and VoiceHub (or ``REJOIN`` "never") refused.
        VoiceHubError: the socket could not be opened or joined.
    """
    if under_way and settings.profile.rejoin is Rejoin.NEVER:
        raise errors.UpstreamRejoinRefused(
            "its relay process stopped and UPSTREAM.REJOIN is 'never': VoiceHub does not "
            "let another socket join a call under way"
        )
    upstream = await open_upstream(
        base_url=call.upstream_url,
        socket_path=call.upstream_socket_path,
        profile=settings.profile,
        context=call.connect,
        report=report,
        connect_timeout=settings.connect_timeout,
    )
    try:
        held = await upstream.join_confirmed(
            call.voicehub_call_id, channels, seconds=settings.join_timeout, under_way=under_way
        )
    except BaseException:
        await upstream.abort()
        raise
    return upstream, held
