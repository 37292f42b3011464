"""Limits on creating calls: rates, caps, budgets, client IPs and who may call."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import RequestFactory, override_settings
from django.urls import reverse
from django.utils import timezone

from tests.servers import free_port
from webcall_widget import http, leases, limits
from webcall_widget.conf import get_settings
from webcall_widget.models import Call, CallStatus, Limit, LimitHit
from webcall_widget.relay import tokens
from webcall_widget.signals import limit_reached


def post(client, slug, ip="203.0.113.7", **headers):
    return client.post(
        f"/webcall/agents/{slug}/calls",
        data=json.dumps({"mode": "text"}),
        content_type="application/json",
        REMOTE_ADDR=ip,
        headers=headers,
    )


@pytest.fixture
def limited(sandbox, settings):
    """Apply ``LIMITS`` overrides on top of the sandbox upstream."""

    def apply(**values):
        settings.WEBCALL_WIDGET = {**settings.WEBCALL_WIDGET, "LIMITS": values}

    return apply


def test_client_over_its_rate_gets_429_with_retry_after(limited, agent, client):
    limited(CALLS_PER_MINUTE_PER_CLIENT=2)
    assert [post(client, agent.slug).status_code for _ in range(2)] == [201, 201]
    refused = post(client, agent.slug)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "try again" in refused.json()["error"]["message"]


def test_a_new_minute_counts_afresh(limited, agent, client, rate_minute):
    limited(CALLS_PER_MINUTE_PER_CLIENT=1, UNCONNECTED_CALLS_PER_CLIENT=5)
    assert post(client, agent.slug).status_code == 201
    refused = post(client, agent.slug)
    assert refused["Retry-After"] == "30"
    rate_minute.now += 30
    assert post(client, agent.slug).status_code == 201


def test_another_client_is_not_held_back_by_the_first(limited, agent, client):
    limited(CALLS_PER_MINUTE_PER_CLIENT=1)
    assert post(client, agent.slug, ip="203.0.113.1").status_code == 201
    assert post(client, agent.slug, ip="203.0.113.1").status_code == 429
    assert post(client, agent.slug, ip="203.0.113.2").status_code == 201


def test_refused_calls_never_reach_voicehub(limited, agent, client, sandbox):
    limited(CALLS_PER_MINUTE_PER_CLIENT=1)
    post(client, agent.slug)
    post(client, agent.slug)
    assert len(sandbox.state.calls) == 1
    assert Call.objects.count() == 1


def test_agent_over_its_rate_gets_429_from_every_client(limited, agent, client):
    limited(CALLS_PER_MINUTE_PER_AGENT=2)
    for ip in ("198.51.100.1", "198.51.100.2"):
        assert post(client, agent.slug, ip=ip).status_code == 201
    assert post(client, agent.slug, ip="198.51.100.3").status_code == 429


def test_agent_rate_is_per_agent(limited, agent_factory, client):
    limited(CALLS_PER_MINUTE_PER_AGENT=1)
    first, second = agent_factory(), agent_factory()
    assert post(client, first.slug, ip="198.51.100.1").status_code == 201
    assert post(client, second.slug, ip="198.51.100.2").status_code == 201


def test_open_calls_cap_answers_busy(sandbox, agent_factory, client):
    agent = agent_factory(max_concurrent_calls=1)
    assert post(client, agent.slug).status_code == 201
    busy = post(client, agent.slug, ip="203.0.113.99")
    assert busy.status_code == 429
    assert busy.json()["error"]["code"] == "agent_busy"
    assert busy["Retry-After"] == "30"


def test_an_ended_call_frees_its_line(sandbox, agent_factory, client):
    agent = agent_factory(max_concurrent_calls=1)
    post(client, agent.slug)
    Call.objects.update(status=CallStatus.ENDED)
    assert post(client, agent.slug).status_code == 201


def test_a_call_never_connected_frees_its_line_when_its_token_expires(
    sandbox, agent_factory, client
):
    agent = agent_factory(max_concurrent_calls=1)
    post(client, agent.slug)
    Call.objects.update(created_at=timezone.now() - dt.timedelta(seconds=61))
    assert post(client, agent.slug).status_code == 201


def test_a_call_left_live_by_a_dead_process_frees_its_line_eventually(
    sandbox, agent_factory, client
):
    agent = agent_factory(max_concurrent_calls=1, max_call_seconds=60)
    post(client, agent.slug)
    Call.objects.update(status=CallStatus.LIVE)
    assert post(client, agent.slug).status_code == 429
    Call.objects.update(created_at=timezone.now() - dt.timedelta(seconds=60 + 60 + 61))
    assert post(client, agent.slug).status_code == 201


def test_a_call_left_live_by_a_dead_process_frees_its_line_once_voicehub_reported_it_over(
    sandbox, agent_factory, client
):
    agent = agent_factory(max_concurrent_calls=1, max_call_seconds=3600)
    post(client, agent.slug)
    reported = timezone.now() - limits.UPSTREAM_END_GRACE
    Call.objects.update(
        status=CallStatus.LIVE,
        voicehub_status="completed",
        voicehub_status_at=reported + dt.timedelta(seconds=5),
    )
    assert post(client, agent.slug).status_code == 429  # its relay may still record the end
    Call.objects.update(voicehub_status_at=reported - dt.timedelta(seconds=5))
    assert post(client, agent.slug).status_code == 201


def test_a_call_whose_relay_process_renews_its_lease_keeps_its_line(
    sandbox, agent_factory, client
):
    agent = agent_factory(max_concurrent_calls=1, max_call_seconds=3600)
    post(client, agent.slug)
    leases.renew("relay-a", draining=False, at=time.time())
    Call.objects.update(status=CallStatus.LIVE, owner="relay-a")
    assert post(client, agent.slug).status_code == 429


def test_a_call_whose_relay_process_lease_lapsed_frees_its_line_at_once(
    sandbox, agent_factory, client
):
    agent = agent_factory(max_concurrent_calls=1, max_call_seconds=3600)
    post(client, agent.slug)
    leases.renew("relay-a", draining=False, at=time.time())
    Call.objects.update(status=CallStatus.LIVE, owner="relay-a")
    leases.drop("relay-a")  # it died, or stopped, without ending the call
    assert post(client, agent.slug).status_code == 201


def test_a_live_call_voicehub_still_reports_in_progress_keeps_its_line(
    sandbox, agent_factory, client
):
    agent = agent_factory(max_concurrent_calls=1, max_call_seconds=3600)
    post(client, agent.slug)
    Call.objects.update(
        status=CallStatus.LIVE,
        voicehub_status="in-progress",
        voicehub_status_at=timezone.now() - dt.timedelta(minutes=30),
    )
    assert post(client, agent.slug).status_code == 429


def test_site_default_cap_applies_when_the_agent_has_none(limited, agent, client):
    limited(CONCURRENT_CALLS_PER_AGENT=1)
    post(client, agent.slug)
    assert post(client, agent.slug).json()["error"]["code"] == "agent_busy"


def test_daily_cap_answers_come_back_tomorrow(sandbox, agent_factory, client):
    agent = agent_factory(max_calls_per_day=2, max_concurrent_calls=10)
    for _ in range(2):
        assert post(client, agent.slug).status_code == 201
    refused = post(client, agent.slug)
    assert refused.json()["error"]["code"] == "daily_limit"
    assert 0 < int(refused["Retry-After"]) <= 86400


def test_calls_refused_by_voicehub_do_not_use_up_the_day(sandbox, agent_factory, client):
    agent = agent_factory(max_calls_per_day=1)
    sandbox.faults.create_status = 503
    assert post(client, agent.slug).status_code == 503
    sandbox.faults.create_status = None
    assert post(client, agent.slug).status_code == 201


def test_yesterdays_calls_do_not_count_today(sandbox, agent_factory, client):
    agent = agent_factory(max_calls_per_day=1)
    post(client, agent.slug)
    Call.objects.update(created_at=timezone.now() - dt.timedelta(days=1), status="ended")
    assert post(client, agent.slug).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_racing_requests_cannot_take_more_lines_than_there_are(agent_factory):
    agent = agent_factory(max_concurrent_calls=3)
    settings = get_settings()
    connection.close()

    def attempt(_: int) -> bool:
        try:
            limits.reserve_call(agent, settings, mode="text")
            return True
        except limits.LimitExceeded:
            return False
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(attempt, range(12)))
    assert results.count(True) == 3
    assert Call.objects.filter(agent=agent).count() == 3


@pytest.mark.parametrize(
    ("trusted", "forwarded", "expected"),
    [
        (0, "198.51.100.9", "10.0.0.1"),  # not behind a proxy: the header is ignored
        (1, "198.51.100.9", "198.51.100.9"),
        (1, "6.6.6.6, 198.51.100.9", "198.51.100.9"),  # a spoofed left entry is ignored
        (2, "198.51.100.9, 10.0.0.2", "198.51.100.9"),
        (2, "198.51.100.9", "10.0.0.1"),  # fewer hops than proxies: do not guess
        (1, "not-an-ip", None),
    ],
)
def test_client_ip_behind_trusted_proxies(trusted, forwarded, expected):
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert http.client_ip(request, trusted) == expected


# who may call


def test_login_required_agent_refuses_anonymous_visitors(sandbox, agent_factory, client):
    agent = agent_factory(access="authenticated")
    response = post(client, agent.slug)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "login_required")
    assert not sandbox.state.calls


def test_login_required_agent_takes_logged_in_visitors_and_records_them(
    sandbox, agent_factory, client
):
    agent = agent_factory(access="authenticated")
    user = get_user_model().objects.create_user("visitor", password="pw")
    client.force_login(user)
    assert post(client, agent.slug).status_code == 201
    assert Call.objects.get().user == user


def test_staff_agent_refuses_other_users(sandbox, agent_factory, client):
    agent = agent_factory(access="staff")
    client.force_login(get_user_model().objects.create_user("visitor", password="pw"))
    assert post(client, agent.slug).json()["error"]["code"] == "staff_only"


def test_staff_agent_takes_staff(sandbox, agent_factory, client):
    agent = agent_factory(access="staff")
    client.force_login(
        get_user_model().objects.create_user("helper", password="pw", is_staff=True)
    )
    assert post(client, agent.slug).status_code == 201


# abuse that cannot drain the day (issue #8, item 7)


class Clock:
    """``timezone.now()`` held at noon UTC today, moved by hand: day boundaries are known."""

    def __init__(self) -> None:
        self.now = timezone.now().astimezone(dt.UTC).replace(hour=12, minute=0, second=0)

    @property
    def midnight(self) -> dt.datetime:
        return self.now.replace(hour=0, minute=0, second=0, microsecond=0)

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)

    def ago(self, seconds: float) -> dt.datetime:
        return self.now - dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch):
    held = Clock()
    monkeypatch.setattr(timezone, "now", lambda: held.now)
    return held


def make_call(agent, *, created_at, **fields):
    call = Call.objects.create(agent=agent, mode="text", **fields)
    Call.objects.filter(pk=call.pk).update(created_at=created_at)
    return call


def error_code(response):
    return response.json()["error"]["code"]


def test_two_clients_that_never_connect_cannot_take_every_line(sandbox, agent, client):
    for ip in ("198.51.100.1", "198.51.100.2"):
        answers = [post(client, agent.slug, ip=ip) for _ in range(10)]
        assert [a.status_code for a in answers] == [201, 201] + [429] * 8
        assert {error_code(a) for a in answers[2:]} == {"too_many_pending"}
        assert 1 <= int(answers[-1]["Retry-After"]) <= 60
        assert "wait a minute" in answers[-1].json()["error"]["message"]
    assert post(client, agent.slug, ip="203.0.113.50").status_code == 201
    assert len(sandbox.state.calls) == 5


def test_unconnected_calls_wait_until_the_oldest_token_expires(sandbox, agent, client, clock):
    post(client, agent.slug)
    clock.advance(20)
    post(client, agent.slug)
    clock.advance(25)
    refused = post(client, agent.slug)
    assert error_code(refused) == "too_many_pending"
    assert refused["Retry-After"] == "16"  # the first call's token lasts 60 s, inclusive
    clock.advance(15)
    assert error_code(post(client, agent.slug)) == "too_many_pending"
    clock.advance(1)
    assert post(client, agent.slug).status_code == 201


def test_a_connected_call_no_longer_counts_as_unconnected(sandbox, agent, client):
    first = post(client, agent.slug).json()["call"]
    post(client, agent.slug)
    assert error_code(post(client, agent.slug)) == "too_many_pending"
    assert tokens.claim(first)
    assert post(client, agent.slug).status_code == 201


def test_unconnected_calls_per_client_can_be_set(limited, agent, client):
    limited(UNCONNECTED_CALLS_PER_CLIENT=1)
    assert post(client, agent.slug).status_code == 201
    assert error_code(post(client, agent.slug)) == "too_many_pending"
    assert post(client, agent.slug, ip="203.0.113.8").status_code == 201


def test_unconnected_calls_are_counted_per_agent(sandbox, agent_factory, client):
    first, second = agent_factory(), agent_factory()
    for _ in range(2):
        post(client, first.slug)
    assert post(client, second.slug).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_racing_requests_from_one_client_cannot_hold_more_unconnected_calls(agent_factory):
    agent = agent_factory()
    settings = get_settings()
    connection.close()

    def attempt(_: int) -> bool:
        try:
            limits.reserve_call(agent, settings, mode="text", client_ip="203.0.113.5")
            return True
        except limits.LimitExceeded:
            return False
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(attempt, range(12)))
    assert results.count(True) == 2


def test_calls_that_never_connect_stop_using_up_the_day(sandbox, agent_factory, client, clock):
    agent = agent_factory(max_calls_per_day=3)
    for n in range(3):
        assert post(client, agent.slug, ip=f"198.51.100.{n + 1}").status_code == 201
    assert error_code(post(client, agent.slug, ip="198.51.100.9")) == "daily_limit"
    clock.advance(61)  # their tokens expired unused
    assert post(client, agent.slug, ip="198.51.100.9").status_code == 201
    call_command("expire_webcalls", stdout=StringIO())  # ended as never-connected
    assert limits.calls_today(agent, get_settings()) == 1


def test_calls_that_connected_use_up_the_day_however_they_ended(
    sandbox, agent_factory, client, clock
):
    agent = agent_factory(max_calls_per_day=3)
    ids = [post(client, agent.slug, ip=f"198.51.100.{n + 1}").json()["call"] for n in range(3)]
    for call_id in ids:
        assert tokens.claim(call_id)
    Call.objects.filter(pk=ids[0]).update(status=CallStatus.ENDED, ended_at=clock.now)
    Call.objects.filter(pk=ids[1]).update(status=CallStatus.FAILED, ended_at=clock.now)
    clock.advance(3600)
    assert error_code(post(client, agent.slug, ip="198.51.100.9")) == "daily_limit"


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        (None, None),
        ("not-an-ip", None),
    ],
)
def test_a_client_is_an_ipv4_address_or_an_ipv6_slash_64(ip, key):
    assert http.client_key(ip) == key


def test_one_ipv6_slash_64_is_one_client_for_the_rate(limited, agent, client):
    limited(UNCONNECTED_CALLS_PER_CLIENT=100)
    answers = [post(client, agent.slug, ip=f"2001:db8:1:2::{n:x}").status_code for n in range(15)]
    assert answers == [201] * 10 + [429] * 5
    assert post(client, agent.slug, ip="2001:db8:1:3::1").status_code == 201


def test_one_ipv6_slash_64_is_one_client_for_unconnected_calls(sandbox, agent, client):
    assert post(client, agent.slug, ip="2001:db8:1:2::1").status_code == 201
    assert post(client, agent.slug, ip="2001:db8:1:2::2").status_code == 201
    assert error_code(post(client, agent.slug, ip="2001:db8:1:2::3")) == "too_many_pending"
    call = Call.objects.filter(client_ip="2001:db8:1:2::2").get()
    assert (call.client_ip, call.client_key) == ("2001:db8:1:2::2", "2001:db8:1:2::/64")


# the daily budget in call minutes


def test_budget_refuses_new_calls_until_midnight_once_used_up(
    sandbox, agent_factory, client, clock
):
    agent = agent_factory(max_call_minutes_per_day=2)
    make_call(
        agent,
        created_at=clock.ago(200),
        status=CallStatus.ENDED,
        live_at=clock.ago(190),
        ended_at=clock.ago(100),
    )  # 90 s
    assert post(client, agent.slug).status_code == 201  # 30 s left
    make_call(agent, created_at=clock.ago(40), status=CallStatus.LIVE, live_at=clock.ago(30))
    refused = post(client, agent.slug, ip="198.51.100.1")
    assert refused.status_code == 429
    assert error_code(refused) == "budget_exhausted"
    assert "talk time" in refused.json()["error"]["message"]
    assert refused["Retry-After"] == str(12 * 3600)  # the clock says noon UTC


def test_budget_can_be_set_for_the_whole_site(limited, agent_factory, client, clock):
    limited(CALL_MINUTES_PER_DAY_PER_AGENT=1)
    agent = agent_factory()
    make_call(agent, created_at=clock.ago(70), status=CallStatus.LIVE, live_at=clock.ago(60))
    assert error_code(post(client, agent.slug)) == "budget_exhausted"
    generous = agent_factory(max_call_minutes_per_day=5)  # the agent's own wins
    make_call(generous, created_at=clock.ago(70), status=CallStatus.LIVE, live_at=clock.ago(60))
    assert post(client, generous.slug).status_code == 201


def test_without_a_budget_minutes_are_not_limited(sandbox, agent, client, clock):
    make_call(
        agent, created_at=clock.ago(3 * 3600), live_at=clock.ago(3 * 3600), ended_at=clock.now
    )
    assert limits.budget_seconds_left(agent.pk, get_settings()) is None
    assert post(client, agent.slug).status_code == 201


def test_budget_seconds_left_counts_todays_live_time(agent_factory, clock):
    agent = agent_factory(max_call_minutes_per_day=10, max_call_seconds=600)
    settings = get_settings()
    assert limits.budget_seconds_left(agent.pk, settings) == 600.0
    # Ended today: 100 s.
    make_call(agent, created_at=clock.ago(500), live_at=clock.ago(400), ended_at=clock.ago(300))
    # Live now, for 50 s so far.
    make_call(agent, created_at=clock.ago(55), status=CallStatus.LIVE, live_at=clock.ago(50))
    # Never went live: nothing.
    make_call(agent, created_at=clock.ago(30))
    make_call(agent, created_at=clock.ago(300), status=CallStatus.FAILED, ended_at=clock.ago(290))
    assert limits.budget_seconds_left(agent.pk, settings) == 450.0
    clock.advance(10)  # the live call goes on
    assert limits.budget_seconds_left(agent.pk, settings) == 440.0


def test_budget_counts_only_the_part_of_a_call_after_midnight(agent_factory, clock):
    agent = agent_factory(max_call_minutes_per_day=10, max_call_seconds=600)
    before = clock.midnight - dt.timedelta(seconds=100)
    make_call(
        agent,
        created_at=before,
        live_at=before,
        ended_at=clock.midnight + dt.timedelta(seconds=40),
    )
    yesterday = clock.midnight - dt.timedelta(hours=2)
    make_call(
        agent,
        created_at=yesterday,
        live_at=yesterday,
        ended_at=yesterday + dt.timedelta(minutes=9),
    )
    assert limits.budget_seconds_left(agent.pk, get_settings()) == 560.0


def test_budget_counts_a_call_whose_relay_died_as_its_longest_length(agent_factory, clock):
    agent = agent_factory(max_call_minutes_per_day=10, max_call_seconds=120)
    make_call(agent, created_at=clock.ago(3600), status=CallStatus.LIVE, live_at=clock.ago(3590))
    make_call(
        agent,
        created_at=clock.ago(7200),
        status=CallStatus.FAILED,
        live_at=clock.ago(7190),
        ended_at=clock.ago(6000),  # ended late, by expire_webcalls
    )
    assert limits.budget_seconds_left(agent.pk, get_settings()) == 600.0 - 2 * 120


def test_budget_counts_a_call_voicehub_reported_over_until_voicehub_said(agent_factory, clock):
    agent = agent_factory(max_call_minutes_per_day=10, max_call_seconds=600)
    make_call(
        agent,
        created_at=clock.ago(400),
        status=CallStatus.LIVE,  # its relay died: nobody recorded the end
        live_at=clock.ago(390),
        voicehub_status="completed",
        voicehub_status_at=clock.ago(300),
    )
    assert limits.budget_seconds_left(agent.pk, get_settings()) == 600.0 - 90


def test_budget_left_is_never_negative_and_zero_when_used_up(agent_factory, clock):
    agent = agent_factory(max_call_minutes_per_day=1)
    make_call(agent, created_at=clock.ago(100), live_at=clock.ago(95), ended_at=clock.ago(5))
    assert limits.budget_seconds_left(agent.pk, get_settings()) == 0.0


def test_budget_of_an_agent_that_is_gone_is_none(db):
    assert limits.budget_seconds_left(999_999, get_settings()) is None


# what the site owner learns when a limit is hit


@pytest.fixture
def heard():
    """What ``limit_reached`` receivers were sent."""
    received = []

    def receiver(sender, **kwargs):
        received.append({"sender": sender, **kwargs})

    limit_reached.connect(receiver, weak=False, dispatch_uid="test-heard")
    yield received
    limit_reached.disconnect(dispatch_uid="test-heard")


def limit_warnings(caplog):
    return [
        r
        for r in caplog.records
        if r.name == "webcall_widget.limits" and r.levelno >= logging.WARNING
    ]


def test_a_limit_is_logged_and_signalled_once_and_every_refusal_counted(
    sandbox, agent_factory, client, caplog, heard, admin_client
):
    agent = agent_factory(max_concurrent_calls=1)
    post(client, agent.slug)
    caplog.set_level(logging.DEBUG, logger="webcall_widget")
    for n in range(5):
        assert error_code(post(client, agent.slug, ip=f"198.51.100.{n + 1}")) == "agent_busy"
    (warning,) = limit_warnings(caplog)
    assert agent.slug in warning.getMessage() and "calls open at once" in warning.getMessage()
    (signal,) = heard
    assert signal["sender"].__name__ == "Agent"
    assert signal["agent"] == agent
    assert (signal["limit"], signal["code"], signal["client_key"]) == (
        "concurrent",
        "agent_busy",
        "",
    )
    hit = LimitHit.objects.get()
    assert (hit.agent, hit.limit, hit.day) == (agent, Limit.CONCURRENT, clock_day())
    assert hit.count + limits.pending_refusals([hit]).get(hit.pk, 0) == 5
    page = admin_client.get(reverse("admin:webcall_widget_agent_change", args=[agent.pk]))
    assert "calls open at once: 5 refusals" in page.content.decode()
    listing = admin_client.get(reverse("admin:webcall_widget_agent_changelist"))
    assert "calls open at once: 5" in listing.content.decode()


def clock_day():
    return timezone.now().astimezone(dt.UTC).date()


def test_each_limit_is_signalled_on_its_own_with_the_client_for_per_client_ones(
    sandbox, agent_factory, client, heard
):
    agent = agent_factory(max_calls_per_day=3)
    for _ in range(4):
        post(client, agent.slug, ip="2001:db8::1")
    for n in range(3):
        post(client, agent.slug, ip=f"198.51.100.{n + 1}")
    assert [(h["limit"], h["code"], h["client_key"]) for h in heard] == [
        ("unconnected", "too_many_pending", "2001:db8::/64"),
        ("calls_per_day", "daily_limit", ""),
    ]
    hits = list(LimitHit.objects.all())
    pending = limits.pending_refusals(hits)
    assert sorted((h.limit, h.count + pending.get(h.pk, 0)) for h in hits) == [
        ("calls_per_day", 2),
        ("unconnected", 2),
    ]


def test_a_rate_limit_is_signalled_once_for_the_client_rate(limited, agent, client, heard):
    limited(CALLS_PER_MINUTE_PER_CLIENT=1, UNCONNECTED_CALLS_PER_CLIENT=5)
    for _ in range(4):
        post(client, agent.slug)
    assert [(h["limit"], h["code"], h["client_key"]) for h in heard] == [
        ("client_rate", "rate_limited", "203.0.113.7")
    ]


def test_a_limit_is_signalled_again_the_next_hour(sandbox, agent_factory, client, clock, heard):
    agent = agent_factory(max_concurrent_calls=1, max_call_seconds=7200)
    post(client, agent.slug)
    post(client, agent.slug, ip="198.51.100.1")
    clock.advance(40)
    post(client, agent.slug, ip="198.51.100.1")
    Call.objects.update(status=CallStatus.LIVE)
    clock.advance(3600)
    post(client, agent.slug, ip="198.51.100.1")
    assert [h["limit"] for h in heard] == ["concurrent", "concurrent"]


def test_a_failing_receiver_is_logged_and_the_visitor_still_gets_the_refusal(
    sandbox, agent_factory, client, caplog
):
    def broken(sender, **kwargs):
        raise RuntimeError("the owner's receiver is broken")

    limit_reached.connect(broken, weak=False, dispatch_uid="test-broken")
    try:
        agent = agent_factory(max_concurrent_calls=1)
        post(client, agent.slug)
        refused = post(client, agent.slug, ip="198.51.100.1")
    finally:
        limit_reached.disconnect(dispatch_uid="test-broken")
    assert refused.status_code == 429
    assert error_code(refused) == "agent_busy"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert {r.name for r in errors} == {"django.dispatch", "webcall_widget.limits"}
    (ours,) = [r for r in errors if r.name == "webcall_widget.limits"]
    assert agent.slug in ours.getMessage() and "limit_reached receiver" in ours.getMessage()
    assert "the owner's receiver is broken" in ours.getMessage()


def test_refusals_reach_the_database_in_batches(sandbox, agent_factory, client):
    from django.core.cache import cache

    agent = agent_factory(max_concurrent_calls=1)
    post(client, agent.slug)
    for n in range(3):
        post(client, agent.slug, ip=f"198.51.100.{n + 1}")
    hit = LimitHit.objects.get()
    assert hit.count == 1  # the first at once, the next ones at most every 10 s
    assert limits.pending_refusals([hit]) == {hit.pk: 2}
    cache.delete(limits._pending_key(agent.pk, Limit.CONCURRENT, hit.day) + ":flushed")  # 10 s on
    post(client, agent.slug, ip="198.51.100.9")
    hit.refresh_from_db()
    assert hit.count == 4
    assert limits.pending_refusals([hit]) == {hit.pk: 0}


def test_a_refusal_a_vanished_cache_cannot_count_is_logged_and_never_raised(agent, caplog):
    refusal = limits.LimitExceeded("agent_busy", 30, limit=Limit.CONCURRENT)
    redis_gone = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    with override_settings(CACHES=redis_gone):
        limits.record_refusal(agent, refusal)
    assert f"Agent {agent.slug}: could not count a refusal by concurrent." in caplog.text
    assert not LimitHit.objects.exists()
