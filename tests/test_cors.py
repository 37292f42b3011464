"""CORS follows each agent's allowed origins, through django-cors-headers' signal."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from webcall_widget.cors import agent_origins, cache_key


def preflight(client, path, origin):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )


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
    assert not [q for q in queries if "webcall_widget_agent" in q["sql"]]


def test_one_request_reads_the_agent_at_most_once(agent_factory, client):
    agent = agent_factory(allowed_origins="https://shop.example")
    cache.delete(cache_key(agent.slug))
    with CaptureQueriesContext(connection) as queries:
        preflight(client, f"/webcall/agents/{agent.slug}/calls", "https://shop.example")
    assert len([q for q in queries if "webcall_widget_agent" in q["sql"]]) == 1


def test_saving_an_agent_refreshes_its_cached_origins(agent_factory):
    agent = agent_factory(allowed_origins="https://a.example")
    assert agent_origins(agent.slug) == ["https://a.example"]
    agent.allowed_origins = "https://b.example"
    agent.save()
    assert agent_origins(agent.slug) == ["https://b.example"]


def test_deleted_agent_has_no_origins(agent_factory):
    agent = agent_factory(allowed_origins="https://a.example")
    agent.delete()
    assert agent_origins(agent.slug) is None


@pytest.mark.django_db(transaction=True)
async def test_lookup_from_the_event_loop_reads_the_database_in_a_thread(agent_factory):
    from channels.db import database_sync_to_async

    agent = await database_sync_to_async(agent_factory)(allowed_origins="https://a.example")
    cache.delete(cache_key(agent.slug))
    assert agent_origins(agent.slug) == ["https://a.example"]
