"""Limits on starting calls: they cost the site owner credits, and any page can ask.

* Rates (new calls per minute per client IP, and per agent) are fixed one-minute windows
  counted in Django's cache, so every process shares them when the cache is Redis.
* Caps (calls open at once, calls per UTC day) are counted in the database, which is the
  truth about calls; :func:`reserve_call` checks them and stores the new ``Call`` in one
  transaction with the agent's row locked, so two requests cannot both take the last slot.

Each refusal is a :class:`LimitExceeded` carrying an error code, a sentence for the
visitor and a ``Retry-After`` in seconds.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from webcall_widget.conf import Settings
from webcall_widget.models import Agent, Call, CallStatus

WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class AgentCaps:
    concurrent_calls: int
    calls_per_day: int
    max_call_seconds: int


class LimitExceeded(Exception):
    http_status = 429

    def __init__(self, code: str, message: object, retry_after: int) -> None:
        super().__init__(f"{code}: retry after {retry_after}s")
        self.code = code
        self.message = str(message)
        self.retry_after = max(1, retry_after)


def caps_for(agent: Agent, settings: Settings) -> AgentCaps:
    limits = settings.limits
    return AgentCaps(
        concurrent_calls=agent.max_concurrent_calls or limits.concurrent_calls_per_agent,
        calls_per_day=agent.max_calls_per_day or limits.calls_per_day_per_agent,
        max_call_seconds=agent.max_call_seconds or limits.max_call_seconds,
    )


def client_ip(request: HttpRequest, trusted_proxies: int) -> str | None:
    """The visitor's IP: ``REMOTE_ADDR``, or the address the last trusted proxy saw."""
    address = request.META.get("REMOTE_ADDR", "")
    if trusted_proxies:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= trusted_proxies:
            address = hops[-trusted_proxies]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def check_rate(scope: str, key: str, limit: int) -> None:
    """Count one more call in the current minute for ``scope:key``.

    Raises:
        LimitExceeded: more than ``limit`` already in this minute.
    """
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    cache_key = f"webcall_widget:rate:{scope}:{key}:{window}"
    cache.add(cache_key, 0, WINDOW_SECONDS + 5)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.set(cache_key, 1, WINDOW_SECONDS + 5)
        count = 1
    if count > limit:
        retry_after = math.ceil((window + 1) * WINDOW_SECONDS - now)
        raise LimitExceeded(
            "rate_limited",
            _("The assistant is busy right now. Please try again in a little while."),
            retry_after,
        )


def check_rates(request: HttpRequest, agent: Agent, settings: Settings) -> None:
    ip = client_ip(request, settings.trusted_proxies) or "unknown"
    check_rate("client", ip, settings.limits.calls_per_minute_per_client)
    check_rate("agent", str(agent.pk), settings.limits.calls_per_minute_per_agent)


OPEN_STATUSES = (CallStatus.CONNECTING, CallStatus.LIVE)


def _open_windows(settings: Settings, caps: AgentCaps) -> tuple[dt.timedelta, dt.timedelta]:
    """How long a created call may wait for its socket, and how long a connected one may
    last, counted from its creation."""
    token_age = dt.timedelta(seconds=settings.connect_token_max_age)
    return token_age, token_age + dt.timedelta(seconds=caps.max_call_seconds + 60)


def active_calls(agent: Agent, settings: Settings, caps: AgentCaps) -> int:
    """Calls that may still be using the agent.

    A created call counts until its connect token expires; a connected one until it
    ends, or until it is older than the longest call allows (a process that died mid-call
    cannot hold a slot forever).
    """
    since = timezone.now()
    token_age, longest = _open_windows(settings, caps)
    return Call.objects.filter(
        Q(status=CallStatus.CREATED, created_at__gte=since - token_age)
        | Q(status__in=OPEN_STATUSES, created_at__gte=since - longest),
        agent=agent,
    ).count()


def expire_stale_calls(settings: Settings) -> dict[str, int]:
    """Close the records of calls that can no longer be going on, so that the admin
    does not show them as open forever: created calls whose token expired unused
    (``never-connected``), and connected ones older than the longest call allows, whose
    relay process died without recording the end (``relay-lost``). The counts of each."""
    now = timezone.now()
    counts = {"never-connected": 0, "relay-lost": 0}
    for agent in Agent.objects.filter(
        calls__status__in=(CallStatus.CREATED, *OPEN_STATUSES)
    ).distinct():
        token_age, longest = _open_windows(settings, caps_for(agent, settings))
        stale = Call.objects.filter(agent=agent, ended_at__isnull=True)
        counts["never-connected"] += stale.filter(
            status=CallStatus.CREATED, created_at__lt=now - token_age
        ).update(status=CallStatus.ENDED, ended_at=now, end_reason="never-connected")
        counts["relay-lost"] += stale.filter(
            status__in=OPEN_STATUSES, created_at__lt=now - longest
        ).update(
            status=CallStatus.FAILED,
            ended_at=now,
            end_reason="relay-lost",
            error_code="relay_lost",
            error_detail="the relay stopped without recording the end of the call",
        )
    return counts


def calls_today(agent: Agent) -> int:
    midnight = timezone.now().astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (
        Call.objects.filter(agent=agent, created_at__gte=midnight)
        .exclude(status=CallStatus.FAILED, voicehub_call_id="")
        .count()
    )


def seconds_to_midnight() -> int:
    now = timezone.now().astimezone(dt.UTC)
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return math.ceil((tomorrow - now).total_seconds())


def reserve_call(agent: Agent, settings: Settings, **fields: object) -> Call:
    """Store a new ``Call`` for ``agent`` if its caps allow one more.

    Raises:
        LimitExceeded: the agent has as many open calls as it may, or has used its calls
            for today.
    """
    caps = caps_for(agent, settings)
    with transaction.atomic():
        # Serialises reservations per agent (a row lock on PostgreSQL and MySQL; SQLite
        # writers are serialised anyway).
        Agent.objects.select_for_update().filter(pk=agent.pk).first()
        if active_calls(agent, settings, caps) >= caps.concurrent_calls:
            raise LimitExceeded(
                "agent_busy",
                _("All lines are busy right now. Please try again in a minute."),
                30,
            )
        if calls_today(agent) >= caps.calls_per_day:
            raise LimitExceeded(
                "daily_limit",
                _(
                    "The assistant has taken all the calls it can today. "
                    "Please come back tomorrow."
                ),
                seconds_to_midnight(),
            )
        return Call.objects.create(agent=agent, **fields)
