"""Limits on starting and running calls: they cost the site owner credits, and any page can ask.

* Rates (new calls per minute per client, and per agent) are fixed one-minute windows
  counted in Django's cache, so every process shares them when the cache is Redis.
* Caps (calls a client has created but not connected, calls open at once, calls per UTC
  day, call minutes per UTC day) are counted in the database, which is the truth about
  calls; :func:`reserve_call` checks them and stores the new ``Call`` in one transaction
  with the agent's row locked, so two requests cannot both take the last slot.
* A client is its IPv4 address, or its IPv6 /64 (one subscriber's network; a host picks
  any address in it): :func:`webcall_widget.http.client_key`.
* The call-minute budget also bounds live calls: the relay asks
  :func:`budget_seconds_left` now and then, and ends its call when nothing is left.

Each refusal is a :class:`LimitExceeded` carrying an error code, a sentence for the
visitor and a ``Retry-After`` in seconds. :func:`record_refusal` counts it for the admin
(:class:`~webcall_widget.models.LimitHit`) and, the first time in a while, logs it and
sends :data:`~webcall_widget.signals.limit_reached`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Case, Count, DateTimeField, F, Min, Q, QuerySet, Sum, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from webcall_widget import leases
from webcall_widget.conf import Settings
from webcall_widget.http import client_key
from webcall_widget.models import OPEN_STATUSES, Agent, Call, CallStatus, Limit, LimitHit
from webcall_widget.signals import limit_reached, send_robustly
from webcall_widget.voicehub.statuses import FINAL_STATUSES

logger = logging.getLogger("webcall_widget.limits")

WINDOW_SECONDS = 60
# A limit that refuses calls is logged and signalled once per agent in this long (the
# daily ones once per UTC day); every refusal is counted, written to the database at
# most this often per agent and limit.
NOTICE_SECONDS = 3600
FLUSH_SECONDS = 10
DAILY_LIMITS = frozenset({Limit.CALLS_PER_DAY, Limit.MINUTES_PER_DAY})


@dataclass(frozen=True, slots=True)
class AgentCaps:
    concurrent_calls: int
    calls_per_day: int
    max_call_seconds: int
    call_minutes_per_day: int | None  # None: no budget


class LimitExceeded(Exception):
    """A limit refused a call; ``code`` names it in :data:`webcall_widget.strings.ERRORS`."""

    http_status = 429

    def __init__(
        self,
        code: str,
        retry_after: int,
        *,
        limit: Limit | None = None,
        client_key: str = "",
    ) -> None:
        super().__init__(f"{code}: retry after {retry_after}s")
        self.code = code
        self.retry_after = max(1, retry_after)
        self.limit = limit  # which limit refused, for the admin and the signal
        self.client_key = client_key  # the client, for the per-client limits


def caps_for(agent: Agent, settings: Settings) -> AgentCaps:
    limits = settings.limits
    return AgentCaps(
        concurrent_calls=agent.max_concurrent_calls or limits.concurrent_calls_per_agent,
        calls_per_day=agent.max_calls_per_day or limits.calls_per_day_per_agent,
        max_call_seconds=agent.max_call_seconds or limits.max_call_seconds,
        call_minutes_per_day=(
            agent.max_call_minutes_per_day or limits.call_minutes_per_day_per_agent
        ),
    )


_RATE_LIMITS = {"client": Limit.CLIENT_RATE, "agent": Limit.AGENT_RATE}

_wall_clock: Callable[[], float] = time.time


@contextlib.contextmanager
def rate_clock(clock: Callable[[], float]) -> Iterator[None]:
    """Rate windows read the time from ``clock`` inside the block (tests hold it, so that no
    burst of calls straddles two minutes)."""
    global _wall_clock
    previous, _wall_clock = _wall_clock, clock
    try:
        yield
    finally:
        _wall_clock = previous


def check_rate(scope: str, key: str, limit: int) -> None:
    """Count one more call in the current minute for ``scope:key``.

    Raises:
        LimitExceeded: more than ``limit`` already in this minute.
    """
    now = _wall_clock()
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
            retry_after,
            limit=_RATE_LIMITS.get(scope),
            client_key=key if scope == "client" else "",
        )


# A live relay records the end of its call within seconds of VoiceHub ending it. A call
# VoiceHub reported over (a final CallStatusChanged webhook) this long ago, and still open
# here, lost its relay process.
UPSTREAM_END_GRACE = dt.timedelta(minutes=2)


def _over_upstream(now: dt.datetime) -> Q:
    """Open calls VoiceHub reported over, longer ago than the grace."""
    return Q(
        voicehub_status__in=[status.value for status in FINAL_STATUSES],
        voicehub_status_at__lt=now - UPSTREAM_END_GRACE,
    )


def _upstream_end() -> Greatest:
    """When VoiceHub said the call was over, but never before it began here (VoiceHub's
    clock may be behind ours)."""
    return Greatest(F("voicehub_status_at"), Coalesce("live_at", "connected_at", "created_at"))


def _open_windows(settings: Settings, caps: AgentCaps) -> tuple[dt.timedelta, dt.timedelta]:
    """How long a created call may wait for its socket, and how long a connected one may
    last, counted from its creation."""
    token_age = dt.timedelta(seconds=settings.connect_token_max_age)
    return token_age, token_age + dt.timedelta(seconds=caps.max_call_seconds + 60)


def active_calls(agent: Agent, settings: Settings, caps: AgentCaps) -> int:
    """Calls that may still be using the agent.

    A created call counts until its connect token expires; a connected one until it
    ends, until it is older than the longest call allows, until VoiceHub reported it
    over a while ago, or as soon as the relay process holding it stopped renewing its
    lease (:mod:`webcall_widget.leases`): a process that died mid-call holds no line.
    """
    since = timezone.now()
    token_age, longest = _open_windows(settings, caps)
    held = (
        Call.objects.filter(
            Q(status=CallStatus.CREATED, created_at__gte=since - token_age)
            | (
                Q(status__in=OPEN_STATUSES, created_at__gte=since - longest)
                & ~_over_upstream(since)
            ),
            agent=agent,
        )
        .values("owner")
        .annotate(calls=Count("pk"))
    )
    by_owner = {row["owner"]: row["calls"] for row in held}  # "": not connected yet
    lost = leases.gone(by_owner)
    return sum(count for owner, count in by_owner.items() if owner not in lost)


def expire_stale_calls(settings: Settings) -> dict[str, int]:
    """Close the records of calls that can no longer be going on, so that the admin
    does not show them as open forever: created calls whose token expired unused
    (``never-connected``), and connected ones whose relay process died without recording
    the end (``relay-lost``): older than the longest call allows, or reported over by
    VoiceHub more than :data:`UPSTREAM_END_GRACE` ago (those end when VoiceHub said). The
    counts of each."""
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
        lost = stale.filter(status__in=OPEN_STATUSES)
        counts["relay-lost"] += _fail_as_lost(
            lost.filter(_over_upstream(now)),
            _upstream_end(),
            "the relay stopped without recording the end of the call, which VoiceHub "
            "reported over",
        )
        counts["relay-lost"] += _fail_as_lost(
            lost.filter(created_at__lt=now - longest),
            now,
            "the relay stopped without recording the end of the call",
        )
    return counts


def _fail_as_lost(calls: QuerySet[Call], ended_at: dt.datetime | Greatest, detail: str) -> int:
    return calls.update(
        status=CallStatus.FAILED,
        ended_at=ended_at,
        end_reason="relay-lost",
        error_code="relay_lost",
        error_detail=detail,
    )


def _midnight(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def calls_today(agent: Agent, settings: Settings, now: dt.datetime | None = None) -> int:
    """Calls the agent took today (UTC): those that connected, and those created so
    recently that they still may. A call that never connected (its visitor left, or
    someone asked for calls to block the agent) stops counting when its token expires,
    and one VoiceHub refused never counts."""
    now = now or timezone.now()
    token_age = dt.timedelta(seconds=settings.connect_token_max_age)
    return Call.objects.filter(
        Q(connected_at__isnull=False)
        | Q(status__in=OPEN_STATUSES)
        | Q(status=CallStatus.CREATED, created_at__gte=now - token_age),
        agent=agent,
        created_at__gte=_midnight(now),
    ).count()


def unconnected_calls(
    agent: Agent, key: str, settings: Settings, now: dt.datetime | None = None
) -> tuple[int, dt.datetime | None]:
    """How many calls the client ``key`` created on ``agent`` whose token is still unused
    and valid, and when the oldest of them was created."""
    now = now or timezone.now()
    token_age = dt.timedelta(seconds=settings.connect_token_max_age)
    found = Call.objects.filter(
        agent=agent,
        client_key=key,
        status=CallStatus.CREATED,
        created_at__gte=now - token_age,
    ).aggregate(count=Count("pk"), oldest=Min("created_at"))
    return found["count"], found["oldest"]


def used_seconds_today(
    agent_id: int, max_call_seconds: int, now: dt.datetime | None = None
) -> float:
    """Seconds the agent's calls have been live today (UTC): ended calls from ``live_at``
    to ``ended_at``, live ones until now (or until VoiceHub reported them over, for those
    whose relay died), each cut to today and to the longest call (a call whose relay died
    is ended late, or not at all, in the database)."""
    now = now or timezone.now()
    midnight = _midnight(now)
    longest = dt.timedelta(seconds=max_call_seconds)
    went_live = Call.objects.filter(agent_id=agent_id, live_at__isnull=False, live_at__lt=now)
    # Most calls went live today and ended in time: the database sums them.
    whole = went_live.filter(
        live_at__gte=midnight, ended_at__isnull=False, ended_at__lte=F("live_at") + longest
    ).aggregate(total=Sum(F("ended_at") - F("live_at")))["total"] or dt.timedelta(0)
    # A few are cut: still live, started before midnight, or ended late.
    rest = went_live.filter(live_at__gt=midnight - longest).filter(
        Q(ended_at__isnull=True)
        | Q(live_at__lt=midnight, ended_at__gt=midnight)
        | Q(live_at__gte=midnight, ended_at__gt=F("live_at") + longest)
    )
    reported_end = Case(
        When(_over_upstream(now), then=_upstream_end()), default=None, output_field=DateTimeField()
    )
    cut = 0.0
    for live_at, ended_at, upstream_end in rest.annotate(upstream_end=reported_end).values_list(
        "live_at", "ended_at", "upstream_end"
    ):
        if live_at is None:  # filtered out above; for the type checker
            continue
        end = min(ended_at or upstream_end or now, live_at + longest, now)
        cut += max(0.0, (end - max(live_at, midnight)).total_seconds())
    return whole.total_seconds() + cut


def budget_seconds_left(
    agent_id: int, settings: Settings, *, now: dt.datetime | None = None
) -> float | None:
    """Seconds of live calls the agent may still have today (UTC), 0.0 when its
    call-minute budget is used up; None when it has no budget (or no longer exists).

    Every live call of the agent spends the budget at once, the caller's own included,
    so ask again well before the answer runs out. Synchronous, a few small queries: call
    it off the event loop (``database_sync_to_async``), not per audio frame.
    """
    agent = Agent.objects.filter(pk=agent_id).first()
    if agent is None:
        return None
    caps = caps_for(agent, settings)
    if caps.call_minutes_per_day is None:
        return None
    used = used_seconds_today(agent.pk, caps.max_call_seconds, now)
    return max(0.0, caps.call_minutes_per_day * 60 - used)


def seconds_to_midnight() -> int:
    now = timezone.now().astimezone(dt.UTC)
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return math.ceil((tomorrow - now).total_seconds())


def reserve_call(agent: Agent, settings: Settings, **fields: object) -> Call:
    """Store a new ``Call`` for ``agent`` if its caps allow one more.

    ``fields`` are the call's; its ``client_key`` is set from ``client_ip``.

    Raises:
        LimitExceeded: the agent has used its calls or its call minutes for today, the
            client has as many calls waiting to connect as it may, or the agent has as
            many open calls as it may.
    """
    caps = caps_for(agent, settings)
    ip = fields.get("client_ip")
    key = client_key(ip if isinstance(ip, str) else None) or ""
    fields["client_key"] = key
    with transaction.atomic():
        # Serialises reservations per agent (a row lock on PostgreSQL and MySQL; SQLite
        # writers are serialised anyway).
        Agent.objects.select_for_update().filter(pk=agent.pk).first()
        now = timezone.now()
        if calls_today(agent, settings, now) >= caps.calls_per_day:
            raise LimitExceeded(
                "daily_limit",
                seconds_to_midnight(),
                limit=Limit.CALLS_PER_DAY,
            )
        if caps.call_minutes_per_day is not None:
            used = used_seconds_today(agent.pk, caps.max_call_seconds, now)
            if used >= caps.call_minutes_per_day * 60:
                raise LimitExceeded(
                    "budget_exhausted",
                    seconds_to_midnight(),
                    limit=Limit.MINUTES_PER_DAY,
                )
        if key:  # a client we cannot tell apart is held only by the rates
            waiting, oldest = unconnected_calls(agent, key, settings, now)
            if waiting >= settings.limits.unconnected_calls_per_client and oldest is not None:
                expires = oldest + dt.timedelta(seconds=settings.connect_token_max_age)
                raise LimitExceeded(
                    "too_many_pending",
                    # A token is good for max_age seconds inclusive: past that one.
                    math.floor((expires - now).total_seconds()) + 1,
                    limit=Limit.UNCONNECTED,
                    client_key=key,
                )
        if active_calls(agent, settings, caps) >= caps.concurrent_calls:
            raise LimitExceeded(
                "agent_busy",
                30,
                limit=Limit.CONCURRENT,
            )
        return Call.objects.create(agent=agent, **fields)


def record_refusal(agent: Agent, refusal: LimitExceeded) -> None:
    """Count a refused call for the admin; the first refusal by a limit in a while (an
    hour; the daily limits, a UTC day) is also logged and sent as ``limit_reached``.

    Counts gather in the cache and reach the database (:class:`LimitHit`) at most every
    ``FLUSH_SECONDS`` per agent and limit, so a flood of refused requests does not become
    a flood of writes; :func:`pending_refusals` has the ones not written yet. Never
    raises: the visitor gets the refusal whatever happens here.
    """
    limit = refusal.limit
    if limit is None:
        return
    try:
        now = timezone.now()
        day = now.astimezone(dt.UTC).date()
        counter = _pending_key(agent.pk, limit, day)
        if not cache.add(counter, 1, 2 * 86400):
            _incr(counter)
        if cache.add(f"{counter}:flushed", 1, FLUSH_SECONDS):
            _flush(agent, limit, day, now, refusal.client_key, counter)
        period = (
            day.isoformat() if limit in DAILY_LIMITS else int(now.timestamp() // NOTICE_SECONDS)
        )
        if not cache.add(f"webcall_widget:limit-notice:{agent.pk}:{limit}:{period}", 1, 86400):
            return
    except Exception:
        logger.exception("Agent %s: could not count a refusal by %s.", agent.slug, limit)
        return
    logger.warning(
        "Agent %s: %s refused a call (%s)%s; further refusals %s are counted in the admin "
        "(limits reached), not logged.",
        agent.slug,
        Limit(limit).label,
        refusal.code,
        f" from client {refusal.client_key}" if refusal.client_key else "",
        "today" if limit in DAILY_LIMITS else "this hour",
    )
    _signal(agent, refusal)


def _pending_key(agent_id: int, limit: str, day: dt.date) -> str:
    return f"webcall_widget:limit-hits:{agent_id}:{limit}:{day.isoformat()}"


def _incr(key: str) -> None:
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, 2 * 86400)


def _flush(
    agent: Agent, limit: str, day: dt.date, now: dt.datetime, client: str, counter: str
) -> None:
    count = cache.get(counter) or 0
    if count <= 0:
        return
    with contextlib.suppress(ValueError):  # expired meanwhile
        cache.decr(counter, count)
    try:
        with transaction.atomic():
            hits = LimitHit.objects.filter(agent=agent, day=day, limit=limit)
            changes = {"count": F("count") + count, "last_at": now, "last_client_key": client}
            if not hits.update(**changes):
                try:
                    with transaction.atomic():
                        LimitHit.objects.create(
                            agent=agent,
                            day=day,
                            limit=limit,
                            count=count,
                            last_at=now,
                            last_client_key=client,
                        )
                except IntegrityError:  # another process created it first
                    hits.update(**changes)
    except DatabaseError:
        logger.exception("Agent %s: could not store %d refusals by %s.", agent.slug, count, limit)


def pending_refusals(hits: list[LimitHit]) -> dict[int, int]:
    """Refusals counted in the cache but not yet written to these :class:`LimitHit` rows,
    by row id."""
    keys = {_pending_key(hit.agent_id, hit.limit, hit.day): hit.pk for hit in hits}
    found = cache.get_many(list(keys)) if keys else {}
    return {keys[key]: max(0, int(value)) for key, value in found.items()}


def _signal(agent: Agent, refusal: LimitExceeded) -> None:
    """Send ``limit_reached``; a receiver that raises is logged (with its traceback by
    Django's ``django.dispatch`` logger, and here with the agent) and changes nothing."""
    send_robustly(
        limit_reached,
        Agent,
        about=f"Agent {agent.slug}",
        log=logger,
        agent=agent,
        limit=str(refusal.limit),
        code=refusal.code,
        client_key=refusal.client_key,
    )
