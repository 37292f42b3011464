"""Starting a call: the limits, VoiceHub's create-web-call, and the record of it.

What the create-call endpoint (:func:`webcall_widget.views.create_call`) and the relay's
start socket (:mod:`webcall_widget.relay.starting`) do alike, in an order in which a
refusal costs nothing: the rates (the cache), the caps and the record (one transaction),
then VoiceHub (the one step that costs a credit), then the ids VoiceHub gave, on the
record. A call started over the relay's socket is claimed by that socket's process at
once: it needs no connect token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from webcall_widget import limits
from webcall_widget.conf import Settings
from webcall_widget.http import client_key
from webcall_widget.models import Agent, Call, CallStatus
from webcall_widget.signals import call_created, send_robustly
from webcall_widget.voicehub import client
from webcall_widget.voicehub.errors import UpstreamUnavailable, VoiceHubError
from webcall_widget.voicehub.events import Mode

logger = logging.getLogger("webcall_widget.calls")


@dataclass(frozen=True)
class Visitor:
    """Who asks for the call: their address, the page's origin, the logged-in user."""

    ip: str | None
    origin: str
    user: Any = None


def upstream_url(settings: Settings, site_url: str) -> str:
    """VoiceHub's base URL: the setting, or the sandbox mounted on this site (``site_url``,
    the site's own scheme and host).

    Raises:
        UpstreamUnavailable: neither is there.
    """
    if settings.upstream.url is not None:
        return settings.upstream.url
    if not settings.sandbox.enabled:
        logger.error(
            "No VoiceHub URL is set and the sandbox is disabled; "
            "set WEBCALL_WIDGET['UPSTREAM']['URL']."
        )
        raise UpstreamUnavailable("no upstream configured")
    return site_url.rstrip("/") + settings.sandbox.path.rstrip("/")


@sensitive_variables("agent")
def start(
    agent: Agent,
    mode: Mode,
    visitor: Visitor,
    settings: Settings,
    *,
    base_url: str,
    claimed_by: str | None = None,
    request: Any = None,
) -> Call:
    """Create a call of ``agent`` at VoiceHub for ``visitor``, and record it. With
    ``claimed_by`` (a relay process's id) the call is that socket's already.

    ``call_created`` is sent with ``request`` (None for a call started over the relay's
    socket).

    Raises:
        LimitExceeded: a rate or a cap refuses it (counted for the admin).
        VoiceHubError: VoiceHub refused it, or could not be reached (the call is then
            recorded ``create-failed``).
    """
    user = visitor.user if visitor.user is not None and visitor.user.is_authenticated else None
    try:
        key = client_key(visitor.ip) or "unknown"
        limits.check_rate("client", key, settings.limits.calls_per_minute_per_client)
        limits.check_rate("agent", str(agent.pk), settings.limits.calls_per_minute_per_agent)
        call = limits.reserve_call(
            agent,
            settings,
            mode=mode.value,
            upstream_url=base_url,
            origin=visitor.origin[:300],
            client_ip=visitor.ip,
            user=user,
        )
    except limits.LimitExceeded as exc:
        # Logged once in a while by record_refusal, not once per refused request.
        logger.debug("Agent %s: call refused (%s).", agent.slug, exc.code)
        limits.record_refusal(agent, exc)
        raise
    try:
        created = client.create_web_call(
            base_url,
            api_key=agent.api_key,
            agent_id=agent.voicehub_agent_id,
            mode=mode,
            timeout=settings.upstream.request_timeout,
            session=client.pooled_session(),
        )
    except VoiceHubError as exc:
        logger.warning("Agent %s: VoiceHub refused a %s call: %s", agent.slug, mode.value, exc)
        Call.objects.filter(pk=call.pk).update(
            status=CallStatus.FAILED,
            ended_at=timezone.now(),
            end_reason="create-failed",
            error_code=exc.code,
            error_detail=str(exc)[:2000],
        )
        raise
    call.voicehub_call_id = created.call_id
    call.upstream_socket_path = created.socket_path
    fields = ["voicehub_call_id", "upstream_socket_path"]
    if claimed_by is not None:
        call.status, call.owner = CallStatus.CONNECTING, claimed_by
        call.connected_at = timezone.now()
        fields += ["status", "connected_at", "owner"]
    call.save(update_fields=fields)
    send_robustly(
        call_created, Call, about=f"Call {call.id}", call=call, agent=agent, request=request
    )
    return call
