"""The app's ES modules, served by the app from the agent's versioned URL.

Module scripts are fetched in CORS mode, and a static file server sends no CORS headers; with
hashed static names a relative import would name another file. So the config names each
module under ``agents/<slug>/widget/<version>/``, which carries the agent's CORS headers.
"""

from __future__ import annotations

import gzip
from urllib.parse import urlsplit

import pytest

from webcall_widget import assets
from webcall_widget.assets import MODULES, STATIC

pytestmark = pytest.mark.django_db

SHOP = "https://shop.example"


def module_urls(client, slug: str, **headers) -> list[str]:
    response = client.get(f"/webcall/agents/{slug}/config", headers=headers)
    assert response.status_code == 200
    found = response.json()["assets"]
    return [found["app"], *found["modules"]]


def path_of(url: str) -> str:
    return urlsplit(url).path


@pytest.mark.parametrize("headers", [{}, {"Origin": SHOP}], ids=["own page", "other origin"])
def test_the_config_names_every_module_under_the_agents_versioned_url(
    agent_factory, client, headers
):
    agent = agent_factory(allowed_origins=SHOP)
    version, _ = assets.modules()
    urls = module_urls(client, agent.slug, **headers)
    assert [path_of(url) for url in urls] == [
        f"/webcall/agents/{agent.slug}/widget/{version}/{name}.js" for name in MODULES
    ]
    assert all(url.startswith("http://testserver/") for url in urls)


def test_the_entry_comes_first(agent, client):
    assert path_of(module_urls(client, agent.slug)[0]).endswith("/widget-app.js")


@pytest.mark.parametrize("name", MODULES)
def test_a_module_is_the_shipped_file_as_javascript(agent, client, name):
    response = client.get(path_of(module_urls(client, agent.slug)[MODULES.index(name)]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.content == (STATIC / f"{name}.js").read_bytes()


def test_a_module_is_gzipped_for_a_browser_that_accepts_it(agent, client):
    path = path_of(module_urls(client, agent.slug)[0])
    response = client.get(path, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert response["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response["Vary"]
    assert gzip.decompress(response.content) == (STATIC / "widget-app.js").read_bytes()


def test_a_module_is_not_gzipped_for_a_client_that_does_not_ask(agent, client):
    response = client.get(path_of(module_urls(client, agent.slug)[0]))
    assert not response.has_header("Content-Encoding")
    assert "Accept-Encoding" in response["Vary"]


def test_a_listed_origin_may_import_the_modules(agent_factory, client):
    agent = agent_factory(allowed_origins=SHOP)
    path = path_of(module_urls(client, agent.slug, Origin=SHOP)[0])
    response = client.get(path, headers={"Origin": SHOP})
    assert response["Access-Control-Allow-Origin"] == SHOP


def test_an_unlisted_origin_may_not(agent_factory, client):
    agent = agent_factory(allowed_origins=SHOP)
    path = path_of(module_urls(client, agent.slug)[0])
    response = client.get(path, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response


def test_the_current_version_is_cached_for_good(agent, client):
    response = client.get(path_of(module_urls(client, agent.slug)[0]))
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"


def test_another_version_gets_the_current_module_revalidated(agent, client):
    response = client.get(f"/webcall/agents/{agent.slug}/widget/0123456789abcdef/panel.js")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-cache"
    assert response.content == (STATIC / "panel.js").read_bytes()


@pytest.mark.parametrize("name", ["widget", "audio-worklet", "nothing", "..%2Fsettings"])
def test_only_the_apps_modules_are_served(agent, client, name):
    version, _ = assets.modules()
    response = client.get(f"/webcall/agents/{agent.slug}/widget/{version}/{name}.js")
    assert response.status_code == 404


def test_a_module_cannot_be_posted(agent, client):
    response = client.post(path_of(module_urls(client, agent.slug)[0]))
    assert response.status_code == 405


def test_the_version_changes_with_any_module():
    bodies = {"widget-app": b"export const a = 1", "panel": b"export const b = 2"}
    same = assets.version(dict(bodies))
    assert assets.version(bodies) == same
    assert assets.version({**bodies, "panel": b"export const b = 3"}) != same
    assert assets.version({**bodies, "voice": b""}) != same
    assert assets.version({"widget-app": bodies["widget-app"]}) != same


def test_modules_are_read_once_in_production(settings):
    settings.DEBUG = False
    assert assets.modules()[1] is assets.modules()[1]


def test_with_debug_on_modules_are_read_at_each_request_so_an_edit_shows(settings):
    settings.DEBUG = True
    assert assets.modules()[1] is not assets.modules()[1]
    assert assets.modules()[0] == assets.modules()[0]
