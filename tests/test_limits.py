"""Limits on creating calls: rates, caps, client IPs and who may call."""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone

from webcall_widget import limits
from webcall_widget.conf import get_settings
from webcall_widget.models import Call, CallStatus


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
    assert limits.client_ip(request, trusted) == expected


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
