"""CORS follows each agent's allowed origins, through django-cors-headers' signal."""

from __future__ import annotations

import secrets

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.clocks import HandClock
from webcall_widget import cors
from webcall_widget.cors import ORIGIN_MAP, VERSION_KEY, OriginMap, agent_origins
from webcall_widget.models import Agent


def preflight(client, path, origin):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )


def agent_queries(queries):
    return [q for q in queries if "webcall_widget_agent" in q["sql"]]


def cache_keys() -> set[str]:
    return set(cache._cache)  # type: ignore[attr-defined]  # LocMemCache, as in the test settings


def test_listed_origin_gets_cors_headers(agent_factory, client):
    agent = agent_factory(allowed_origins="https://shop.example")
    response = preflight(client, f"/webcall/agents/{agent.slug}/calls", "https://shop.example")
    assert response["access-control-allow-origin"] == "https://shop.example"


def test_wildcard_subdomain_origin_gets_cors_headers(agent_factory, client):
    agent = agent_factory(allowed_origins="https://*.shop.example")
    response = preflight(client, f"/webcall/agents/{agent.slug}/calls", "https://eu.shop.example")
    assert response["access-control-allow-origin"] == "https://eu.shop.example"


def test_unlisted_origin_gets_no_cors_headers(agent_factory, client):
    agent = agent_factory(allowed_origins="https://shop.example")
    response = preflight(client, f"/webcall/agents/{agent.slug}/calls", "https://evil.example")
    assert "access-control-allow-origin" not in response


def test_origin_listed_for_another_agent_gets_no_cors_headers(agent_factory, client):
    agent_factory(allowed_origins="https://shop.example")
    other = agent_factory()
    response = preflight(client, f"/webcall/agents/{other.slug}/calls", "https://shop.example")
    assert "access-control-allow-origin" not in response


def test_config_get_carries_cors_headers_for_a_listed_origin(agent_factory, client):
    agent = agent_factory(allowed_origins="https://shop.example")
    response = client.get(
        f"/webcall/agents/{agent.slug}/config", headers={"Origin": "https://shop.example"}
    )
    assert response.status_code == 200
    assert response["access-control-allow-origin"] == "https://shop.example"


def test_other_paths_never_touch_the_database(db, client):
    with CaptureQueriesContext(connection) as queries:
        client.get("/admin/login/", headers={"Origin": "https://shop.example"})
    assert not agent_queries(queries)


@pytest.mark.parametrize(
    "path", ["/webcall/health/live", "/webcall/health/ready", "/webcall/metrics"]
)
def test_health_and_metrics_are_not_agent_paths(db, rf, path):
    """Probes are not browsers: no CORS, and no origin map read for them."""
    ORIGIN_MAP.clear()
    request = rf.get(path, headers={"Origin": "https://shop.example"})
    with CaptureQueriesContext(connection) as queries:
        assert cors.allow_agent_origin(None, request) is False
    assert len(queries) == 0
    assert cache.get(VERSION_KEY) is None


# The origin map: built once, kept in the process, never one query or cache key per slug.


def test_the_map_is_built_with_one_query_for_every_agent(agent_factory, client):
    agents = [agent_factory(allowed_origins=f"https://shop{n}.example") for n in range(5)]
    ORIGIN_MAP.clear()
    with CaptureQueriesContext(connection) as queries:
        for n, agent in enumerate(agents):
            origin = f"https://shop{n}.example"
            response = preflight(client, f"/webcall/agents/{agent.slug}/calls", origin)
            assert response["access-control-allow-origin"] == origin
    assert len(agent_queries(queries)) == 1


def test_unknown_slugs_never_reach_the_database(agent, client):
    agent_origins(agent.slug)  # the map is built
    with CaptureQueriesContext(connection) as queries:
        for _ in range(200):
            slug = secrets.token_hex(8)
            preflight(client, f"/webcall/agents/{slug}/calls", "https://shop.example")
    assert len(queries) == 0


def test_unknown_slugs_create_no_cache_keys(agent, client):
    agent_origins(agent.slug)
    before = cache_keys()
    for _ in range(200):
        preflight(client, f"/webcall/agents/{secrets.token_hex(8)}/calls", "https://a.example")
    assert cache_keys() == before


@pytest.mark.django_db(transaction=True)
async def test_unknown_slugs_on_the_event_loop_wait_for_no_thread(agent_factory):
    from channels.db import database_sync_to_async

    agent = await database_sync_to_async(agent_factory)(allowed_origins="https://a.example")
    loads = []

    def counted(function):
        loads.append(function)
        return cors._outside_event_loop(function)

    origin_map = OriginMap(load=counted)
    assert origin_map.origins_of(agent.slug) == ["https://a.example"]  # built, in a thread
    assert [origin_map.origins_of(secrets.token_hex(8)) for _ in range(200)] == [None] * 200
    assert origin_map.origins_of(agent.slug) == ["https://a.example"]
    assert len(loads) == 1


@pytest.mark.django_db(transaction=True)
async def test_the_first_lookup_on_the_event_loop_reads_the_database_in_a_thread(
    agent_factory,
):
    from channels.db import database_sync_to_async

    agent = await database_sync_to_async(agent_factory)(allowed_origins="https://a.example")
    ORIGIN_MAP.clear()
    assert agent_origins(agent.slug) == ["https://a.example"]


def test_one_request_reads_the_agents_at_most_once(agent_factory, client):
    agent = agent_factory(allowed_origins="https://shop.example")
    ORIGIN_MAP.clear()
    with CaptureQueriesContext(connection) as queries:
        preflight(client, f"/webcall/agents/{agent.slug}/calls", "https://shop.example")
    assert len(agent_queries(queries)) == 1


# Changes


def test_a_saved_origin_is_allowed_at_once_in_this_process(agent_factory, client):
    agent = agent_factory(allowed_origins="https://a.example")
    assert agent_origins(agent.slug) == ["https://a.example"]
    agent.allowed_origins = "https://b.example"
    agent.save()
    with CaptureQueriesContext(connection) as queries:
        response = preflight(client, f"/webcall/agents/{agent.slug}/calls", "https://b.example")
    assert response["access-control-allow-origin"] == "https://b.example"
    assert not agent_queries(queries)


def test_a_renamed_agent_is_found_by_its_new_slug_only(agent_factory):
    agent = agent_factory(slug="old-name", allowed_origins="https://a.example")
    assert agent_origins("old-name") == ["https://a.example"]
    agent.slug = "new-name"
    agent.save()
    assert (agent_origins("old-name"), agent_origins("new-name")) == (None, ["https://a.example"])


def test_deleted_agent_has_no_origins(agent_factory):
    agent = agent_factory(allowed_origins="https://a.example")
    assert agent_origins(agent.slug) == ["https://a.example"]
    agent.delete()
    assert agent_origins(agent.slug) is None


def test_a_change_from_another_process_is_seen_through_the_cache_version(agent_factory):
    agent = agent_factory(allowed_origins="https://a.example")
    assert agent_origins(agent.slug) == ["https://a.example"]
    # Another process saves the agent (no signal here) and, once committed, bumps the
    # version in the shared cache.
    Agent.objects.filter(pk=agent.pk).update(allowed_origins="https://b.example")
    assert agent_origins(agent.slug) == ["https://a.example"]  # this process's map
    cache.set(VERSION_KEY, "from-another-process", None)
    with CaptureQueriesContext(connection) as queries:
        assert agent_origins(agent.slug) == ["https://b.example"]
    assert len(agent_queries(queries)) == 1


def test_a_lost_cache_version_rebuilds_the_map(agent_factory):
    agent = agent_factory(allowed_origins="https://a.example")
    assert agent_origins(agent.slug) == ["https://a.example"]
    Agent.objects.filter(pk=agent.pk).update(allowed_origins="https://b.example")
    cache.clear()
    assert agent_origins(agent.slug) == ["https://b.example"]
    assert cache.get(VERSION_KEY) is not None


def test_a_committed_save_publishes_a_new_version(
    agent_factory, django_capture_on_commit_callbacks
):
    agent = agent_factory(allowed_origins="https://a.example")
    assert agent_origins(agent.slug) == ["https://a.example"]
    before = cache.get(VERSION_KEY)
    with django_capture_on_commit_callbacks(execute=True):
        agent.allowed_origins = "https://b.example"
        agent.save()
    assert cache.get(VERSION_KEY) not in (None, before)
    assert agent_origins(agent.slug) == ["https://b.example"]


def test_the_map_is_rebuilt_after_max_age_for_changes_no_signal_saw(agent_factory):
    agent = agent_factory(allowed_origins="https://a.example")
    clock = HandClock(1000.0)
    origin_map = OriginMap(clock=clock)
    assert origin_map.origins_of(agent.slug) == ["https://a.example"]
    Agent.objects.filter(pk=agent.pk).update(allowed_origins="https://b.example")
    clock.now += cors.MAX_AGE
    assert origin_map.origins_of(agent.slug) == ["https://a.example"]  # not too old yet
    clock.now += 1
    assert origin_map.origins_of(agent.slug) == ["https://b.example"]
