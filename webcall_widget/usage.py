"""What agents were used for, per agent and UTC day, for the site owner (the admin's
*Usage* page).

* created: calls the site asked VoiceHub for (the limits let them through), VoiceHub's
  refusals included;
* connected: those whose visitor opened the relay socket;
* refused: calls the limits refused, per limit (the ``LimitHit`` counts);
* minutes talked: from going live to the end, of the calls created that day;
* end reasons: the most common ones, with their counts.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from webcall_widget.limits import pending_refusals
from webcall_widget.models import Agent, Call, Limit, LimitHit

TOP_END_REASONS = 3


@dataclass
class UsageDay:
    agent_id: int
    day: dt.date
    agent: Agent | None = None
    created: int = 0
    connected: int = 0
    seconds_talked: float = 0.0
    refused: dict[str, int] = field(default_factory=dict)  # by Limit value
    end_reasons: list[tuple[str, int]] = field(default_factory=list)  # most common first

    @property
    def minutes_talked(self) -> float:
        return self.seconds_talked / 60

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    def refused_by_limit(self) -> list[tuple[str, int]]:
        """(limit's label, count), in the order limits are declared."""
        return [
            (str(limit.label), self.refused[limit]) for limit in Limit if limit in self.refused
        ]


@dataclass
class Usage:
    days: list[UsageDay]
    since: dt.date
    until: dt.date

    @property
    def created(self) -> int:
        return sum(d.created for d in self.days)

    @property
    def connected(self) -> int:
        return sum(d.connected for d in self.days)

    @property
    def refused(self) -> int:
        return sum(d.refused_total for d in self.days)

    @property
    def minutes_talked(self) -> float:
        return sum(d.minutes_talked for d in self.days)


def usage(days: int, *, agent_id: int | None = None, today: dt.date | None = None) -> Usage:
    """The last ``days`` UTC days up to ``today`` (default: today, UTC), newest first."""
    until = today or timezone.now().astimezone(dt.UTC).date()
    since = until - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(since, dt.time.min, tzinfo=dt.UTC)
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    calls = Call.objects.filter(created_at__gte=start, created_at__lt=end)
    hits = LimitHit.objects.filter(day__gte=since, day__lte=until)
    if agent_id is not None:
        calls = calls.filter(agent_id=agent_id)
        hits = hits.filter(agent_id=agent_id)
    tallies: dict[tuple[int, dt.date], UsageDay] = {}

    def tally(agent_id: int, day: dt.date) -> UsageDay:
        return tallies.setdefault((agent_id, day), UsageDay(agent_id, day))

    by_day = calls.annotate(day=TruncDate("created_at", tzinfo=dt.UTC)).values("agent_id", "day")
    for row in by_day.annotate(
        created=Count("pk"),
        connected=Count("pk", filter=Q(connected_at__isnull=False)),
        talked=Sum(
            F("ended_at") - F("live_at"), filter=Q(live_at__isnull=False, ended_at__isnull=False)
        ),
    ):
        found = tally(row["agent_id"], row["day"])
        found.created, found.connected = row["created"], row["connected"]
        found.seconds_talked = max(0.0, row["talked"].total_seconds()) if row["talked"] else 0.0
    reasons: dict[tuple[int, dt.date], Counter[str]] = defaultdict(Counter)
    ended = by_day.exclude(end_reason="").values("agent_id", "day", "end_reason")
    for reason in ended.annotate(n=Count("pk")):
        reasons[reason["agent_id"], reason["day"]][reason["end_reason"]] = reason["n"]
    hit_list = list(hits)
    pending = pending_refusals(hit_list)
    for hit in hit_list:
        tally(hit.agent_id, hit.day).refused[hit.limit] = hit.count + pending.get(hit.pk, 0)
    agents = Agent.objects.in_bulk({agent_id for agent_id, _ in tallies})
    kept: list[UsageDay] = []
    for key, day_of_agent in tallies.items():
        day_of_agent.agent = agents.get(day_of_agent.agent_id)
        day_of_agent.end_reasons = reasons[key].most_common(TOP_END_REASONS)
        if day_of_agent.agent is not None:
            kept.append(day_of_agent)
    kept.sort(key=lambda d: (-d.day.toordinal(), d.agent.name if d.agent else "", d.agent_id))
    return Usage(days=kept, since=since, until=until)
