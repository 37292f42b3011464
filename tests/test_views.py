"""The create-call and widget-config endpoints, with the sandbox as the real upstream."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from webcall_widget.models import Call, CallStatus
from webcall_widget.relay import tokens
from webcall_widget.sandbox.config import SANDBOX_API_KEY


def post(client, slug, body=None, **headers):
    return client.post(
        f"/webcall/agents/{slug}/calls",
        data=json.dumps({"mode": "text"} if body is None else body),
        content_type="application/json",
        headers=headers,
    )


def error_code(response):
    return response.json()["error"]["code"]


def test_created_call_returns_our_id_mode_and_relay_socket(sandbox, agent, client):
    response = post(client, agent.slug)
    assert response.status_code == 201
    body = response.json()
    call = Call.objects.get()
    assert body["call"] == str(call.id)
    assert body["mode"] == "text"
    assert body["expiresIn"] == 60
    socket = urlsplit(body["socket"])
    assert (socket.scheme, socket.netloc) == ("ws", "testserver")
    token = socket.path.removeprefix("/ws/webcall/").rstrip("/")
    assert tokens.read(token, max_age=60) == call.id


def test_created_call_is_stored_with_the_voicehub_call(sandbox, agent, client):
    post(client, agent.slug, Origin="http://testserver")
    call = Call.objects.get()
    assert call.voicehub_call_id in sandbox.state.calls
    assert call.upstream_socket_path == "/socket.io"
    assert call.status == CallStatus.CREATED
    assert call.client_ip == "127.0.0.1"


def test_secure_request_gets_a_wss_socket(sandbox, agent, client):
    response = client.post(
        f"/webcall/agents/{agent.slug}/calls",
        data="{}",
        content_type="application/json",
        secure=True,
    )
    assert response.json()["socket"].startswith("wss://testserver/ws/webcall/")


def test_socket_url_setting_sends_browsers_elsewhere(sandbox, agent, client, settings):
    settings.WEBCALL_WIDGET = {
        **settings.WEBCALL_WIDGET,
        "SOCKET_URL": "wss://realtime.example.com/relay",
    }
    assert (
        post(client, agent.slug).json()["socket"].startswith("wss://realtime.example.com/relay/")
    )


def test_mode_defaults_to_the_agents_default(sandbox, agent_factory, client):
    agent = agent_factory(default_mode="TextAudio")
    assert post(client, agent.slug, {}).json()["mode"] == "TextAudio"


def test_response_never_contains_the_api_key(sandbox, agent, client):
    assert SANDBOX_API_KEY not in post(client, agent.slug).content.decode()


def test_unknown_agent_is_404(sandbox, db, client):
    response = post(client, "nobody")
    assert (response.status_code, error_code(response)) == (404, "agent_not_found")


def test_inactive_agent_is_503(sandbox, agent_factory, client):
    agent = agent_factory(is_active=False)
    response = post(client, agent.slug)
    assert (response.status_code, error_code(response)) == (503, "agent_disabled")


def test_mode_the_agent_does_not_offer_is_400(sandbox, agent_factory, client):
    agent = agent_factory(modes=["text"])
    response = post(client, agent.slug, {"mode": "WebAudio"})
    assert (response.status_code, error_code(response)) == (400, "mode_not_allowed")
    assert not sandbox.state.calls


@pytest.mark.parametrize("body", [{"mode": "webaudio"}, {"mode": 3}, [], "text"])
def test_malformed_request_is_400(sandbox, agent, client, body):
    response = post(client, agent.slug, body)
    assert (response.status_code, error_code(response)) == (400, "invalid_request")


def test_body_that_is_not_json_is_400(sandbox, agent, client):
    response = client.post(
        f"/webcall/agents/{agent.slug}/calls", data="{", content_type="application/json"
    )
    assert error_code(response) == "invalid_request"


def test_form_post_is_refused_with_415(sandbox, agent, client):
    response = client.post(f"/webcall/agents/{agent.slug}/calls", {"mode": "text"})
    assert response.status_code == 415


def test_huge_body_is_413(sandbox, agent, client):
    response = post(client, agent.slug, {"mode": "text", "pad": "x" * 10_000})
    assert response.status_code == 413


def test_get_is_405(sandbox, agent, client):
    assert client.get(f"/webcall/agents/{agent.slug}/calls").status_code == 405


def test_origin_not_allowed_is_403(sandbox, agent, client):
    response = post(client, agent.slug, Origin="https://evil.example")
    assert (response.status_code, error_code(response)) == (403, "origin_not_allowed")
    assert not sandbox.state.calls


@pytest.mark.parametrize(
    ("agent_fields", "status", "code"),
    [
        ({"voicehub_agent_id": "misconfigured-agent"}, 502, "agent_misconfigured"),
        ({"api_key": "wrong-key"}, 502, "invalid_api_key"),
        ({"api_key": "sandbox-key-no-credits"}, 503, "insufficient_credits"),
        ({"voicehub_agent_id": "voice-echo-agent"}, 502, "operation_not_allowed"),
    ],
)
def test_each_voicehub_refusal_has_its_code_and_visitor_message(
    sandbox, agent_factory, client, agent_fields, status, code
):
    agent = agent_factory(**agent_fields)
    response = post(client, agent.slug)
    assert (response.status_code, error_code(response)) == (status, code)
    message = response.json()["error"]["message"]
    assert message and "API key" not in message
    failed = Call.objects.get()
    assert (failed.status, failed.error_code) == (CallStatus.FAILED, code)


def test_voicehub_down_is_503_upstream_unavailable(sandbox, agent, client):
    sandbox.faults.create_status = 502
    response = post(client, agent.slug)
    assert (response.status_code, error_code(response)) == (503, "upstream_unavailable")


def test_voicehub_timeout_is_503_upstream_unavailable(sandbox, agent, client, settings):
    settings.WEBCALL_WIDGET = {"UPSTREAM": {"URL": sandbox.url, "REQUEST_TIMEOUT": 0.2}}
    sandbox.faults.create_delay = 1.0
    response = post(client, agent.slug)
    assert error_code(response) == "upstream_unavailable"
    assert "timed out" in Call.objects.get().error_detail


def test_voicehub_garbage_is_502_bad_response(sandbox, agent, client):
    sandbox.faults.create_body = b"<html>"
    response = post(client, agent.slug)
    assert (response.status_code, error_code(response)) == (502, "upstream_bad_response")


def test_failed_create_logs_without_the_key(sandbox, agent_factory, client, caplog):
    agent = agent_factory(api_key="sk-very-secret-value")
    post(client, agent.slug)
    assert "sk-very-secret-value" not in caplog.text
    assert "401" in caplog.text


def test_no_upstream_and_no_sandbox_is_503(agent, client, settings):
    settings.WEBCALL_WIDGET = {"SANDBOX": {"ENABLED": False}}
    response = post(client, agent.slug)
    assert (response.status_code, error_code(response)) == (503, "upstream_unavailable")


def test_config_describes_the_agent_for_the_widget(agent_factory, client):
    agent = agent_factory(title="Help", primary_color="#112233", modes=["text", "TextAudio"])
    config = client.get(f"/webcall/agents/{agent.slug}/config").json()
    assert config["agent"]["title"] == "Help"
    assert config["agent"]["colors"]["primary"] == "#112233"
    assert config["modes"] == ["text", "TextAudio"]
    assert config["createCallUrl"] == f"http://testserver/webcall/agents/{agent.slug}/calls"
    assert config["assets"]["css"].startswith("http://testserver/static/webcall_widget/")


def test_config_never_contains_the_key_or_the_voicehub_agent_id(agent, client):
    text = client.get(f"/webcall/agents/{agent.slug}/config").content.decode()
    assert agent.api_key not in text
    assert agent.voicehub_agent_id not in text


def test_config_of_unknown_agent_is_404(db, client):
    assert client.get("/webcall/agents/nobody/config").status_code == 404


# Bad input: a JSON error, never a server error.


def test_deeply_nested_json_body_is_400_invalid_request(sandbox, agent, client):
    response = client.post(
        f"/webcall/agents/{agent.slug}/calls", data="[" * 4000, content_type="application/json"
    )
    assert (response.status_code, error_code(response)) == (400, "invalid_request")
    assert not Call.objects.exists()


def test_deeply_nested_mode_is_400_invalid_request(sandbox, agent, client):
    body = '{"mode":' + "[" * 2000 + "]" * 2000 + "}"
    response = client.post(
        f"/webcall/agents/{agent.slug}/calls", data=body, content_type="application/json"
    )
    assert (response.status_code, error_code(response)) == (400, "invalid_request")


def test_body_declared_over_the_limit_is_413_and_never_read(sandbox, agent, client):
    response = client.post(
        f"/webcall/agents/{agent.slug}/calls",
        data="{}",
        content_type="application/json",
        CONTENT_LENGTH="10000000",
    )
    assert (response.status_code, error_code(response)) == (413, "invalid_request")
    assert not response.wsgi_request._read_started


def test_body_over_djangos_own_upload_limit_is_a_413_json_error(sandbox, agent, client):
    response = post(client, agent.slug, {"mode": "text", "pad": "x" * 3_000_000})
    assert (response.status_code, error_code(response)) == (413, "invalid_request")


KEY_FROM_A_DOCUMENT = "sk-sandbox\u2019key-0123456789"  # a typographic apostrophe


def test_api_key_that_cannot_be_sent_fails_the_call_with_a_json_error(
    sandbox, agent_factory, client
):
    agent = agent_factory(api_key=KEY_FROM_A_DOCUMENT)
    response = post(client, agent.slug)
    assert (response.status_code, error_code(response)) == (502, "agent_misconfigured")
    assert not sandbox.state.calls  # nothing was sent
    failed = Call.objects.get()
    assert (failed.status, failed.end_reason) == (CallStatus.FAILED, "create-failed")
    assert "U+2019 RIGHT SINGLE QUOTATION MARK" in failed.error_detail
    assert "API key" in failed.error_detail
    assert KEY_FROM_A_DOCUMENT not in failed.error_detail


def test_agent_id_that_cannot_be_sent_fails_the_call_with_a_json_error(
    sandbox, agent_factory, client
):
    agent = agent_factory(voicehub_agent_id="echo\u2013agent")  # an en dash
    response = post(client, agent.slug)
    assert (response.status_code, error_code(response)) == (502, "agent_misconfigured")
    assert "VoiceHub agent id" in Call.objects.get().error_detail


def test_create_call_marks_every_posted_parameter_sensitive(sandbox, agent, client):
    response = post(client, agent.slug)
    assert response.wsgi_request.sensitive_post_parameters == "__ALL__"


def test_debug_error_page_never_shows_the_api_key(sandbox, agent_factory, settings, monkeypatch):
    """With DEBUG on, an unexpected error while VoiceHub is asked shows Django's technical
    500 page, with every frame's local variables: none may show the key."""
    from django.test import Client
    from requests.adapters import HTTPAdapter

    def broken_send(self, request, **kwargs):
        raise RuntimeError("the network stack broke")

    monkeypatch.setattr(HTTPAdapter, "send", broken_send)
    settings.DEBUG = True
    key = "-".join(["sk", "shown", "nowhere", "0123456789"])  # the page quotes source lines
    agent = agent_factory(api_key=key)
    response = post(Client(raise_request_exception=False), agent.slug)
    page = response.content.decode()
    assert response.status_code == 500
    assert "the network stack broke" in page and "create_web_call" in page  # the real page
    assert key not in page


@pytest.fixture
def cache_down(settings):
    """The cache is a real Redis client on a port nobody listens on: Redis restarting."""
    from tests.servers import free_port

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }


@pytest.fixture
def database_down():
    """Every query fails as a database that went away does. The tests' own database cannot
    be stopped under them (tests/test_chaos.py restarts a real PostgreSQL under a site)."""
    from django.db import OperationalError, connection

    def refuse(*args):
        raise OperationalError("server closed the connection unexpectedly")

    with connection.execute_wrapper(refuse):
        yield


def test_a_new_call_while_the_cache_is_down_is_503_with_a_retry_after(
    sandbox, agent, client, cache_down
):
    response = post(client, agent.slug)
    assert response.status_code == 503
    assert error_code(response) == "relay_error"
    assert response["Retry-After"] == "5"
    assert not Call.objects.exists()


def test_a_new_call_while_the_database_is_down_is_503_with_a_retry_after(
    sandbox, agent, client, database_down
):
    response = post(client, agent.slug)
    assert response.status_code == 503
    assert (error_code(response), response["Retry-After"]) == ("relay_error", "5")


def test_the_widgets_config_while_the_database_is_down_is_503(agent, client, database_down):
    response = client.get(f"/webcall/agents/{agent.slug}/config")
    assert response.status_code == 503
    assert error_code(response) == "relay_error"
