"""The audio worklet: the static file for the site's own pages, an agent URL with the
agent's CORS headers for pages on other origins (worklets are fetched in CORS mode)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from webcall_widget.assets import WORKLET

pytestmark = pytest.mark.django_db

SHOP = "https://shop.example"


def worklet_url(client, slug, **headers) -> str:
    response = client.get(f"/webcall/agents/{slug}/config", headers=headers)
    assert response.status_code == 200
    return response.json()["assets"]["worklet"]


def test_the_sites_own_pages_get_the_static_file(agent, client):
    assert urlsplit(worklet_url(client, agent.slug)).path.startswith("/static/")


def test_a_page_on_another_origin_gets_the_agents_worklet_url(agent_factory, client):
    agent = agent_factory(allowed_origins=SHOP)
    url = urlsplit(worklet_url(client, agent.slug, Origin=SHOP))
    assert url.path == f"/webcall/agents/{agent.slug}/audio-worklet.js"
    assert url.query.startswith("v=")


def test_the_agents_worklet_is_the_static_file_as_javascript(agent, client):
    response = client.get(f"/webcall/agents/{agent.slug}/audio-worklet.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.content == WORKLET.read_bytes()


def test_a_listed_origin_may_load_the_worklet(agent_factory, client):
    agent = agent_factory(allowed_origins=SHOP)
    response = client.get(
        f"/webcall/agents/{agent.slug}/audio-worklet.js", headers={"Origin": SHOP}
    )
    assert response["Access-Control-Allow-Origin"] == SHOP


def test_an_unlisted_origin_may_not(agent_factory, client):
    agent = agent_factory(allowed_origins=SHOP)
    response = client.get(
        f"/webcall/agents/{agent.slug}/audio-worklet.js",
        headers={"Origin": "https://evil.example"},
    )
    assert "Access-Control-Allow-Origin" not in response


def test_the_versioned_url_is_cached_for_good_and_others_are_revalidated(agent_factory, client):
    agent = agent_factory(allowed_origins=SHOP)
    versioned = urlsplit(worklet_url(client, agent.slug, Origin=SHOP))
    cached = client.get(f"{versioned.path}?{versioned.query}")
    assert "immutable" in cached["Cache-Control"]
    stale = client.get(f"{versioned.path}?v=old")
    assert stale["Cache-Control"] == "no-cache"
