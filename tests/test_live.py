"""The whole stack on a real ASGI server: the site composed as a user composes it, with the
sandbox mounted on it as the default upstream, driven by real HTTP and WebSocket clients."""

from __future__ import annotations

import pytest
import requests

from tests.servers import ServerThread, post_create_call, say_and_hang_up

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_site(settings):
    settings.WEBCALL_WIDGET = {"SANDBOX": {"ENABLED": True}}
    from tests.asgi import application

    with ServerThread(application, name="live-site") as server:
        yield server


def test_mounted_sandbox_is_the_default_upstream(live_site, agent):
    response = post_create_call(live_site.url, agent.slug)
    assert response.status_code == 201, response.text
    socket_url = response.json()["socket"]
    assert socket_url.startswith(f"{live_site.ws_url}/ws/webcall/")

    frames = say_and_hang_up(socket_url, live_site.url, "over the wire")
    assert frames[0]["type"] == "ready"
    assert frames[-2]["text"] == "You said: over the wire"
    assert frames[-1] == {"type": "ended", "reason": "visitor-ended"}


def test_sandbox_is_not_served_when_disabled(live_site, settings):
    settings.WEBCALL_WIDGET = {"SANDBOX": {"ENABLED": False}}
    response = requests.post(
        f"{live_site.url}/voicehub-sandbox/calls/public/create-web-call", timeout=5
    )
    assert response.status_code == 404
    assert "statusCode" not in response.text  # Django's 404, not the sandbox's
