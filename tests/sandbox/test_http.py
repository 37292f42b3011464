"""The sandbox's create-web-call over real HTTP: what VoiceHub documents."""

from __future__ import annotations

import requests

from webcall_widget.sandbox.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY

HEADERS = {
    "x-api-access-key": SANDBOX_API_KEY,
    "voicehub-agent-id": SANDBOX_AGENT_ID,
    "Content-Type": "application/json",
}


def post(sandbox, body=b'{"type": "text"}', headers=HEADERS, path="/calls/public/create-web-call"):
    return requests.post(sandbox.url + path, data=body, headers=headers, timeout=5)


def test_created_answers_201_with_call_id_and_socket_path(sandbox):
    response = post(sandbox)
    assert response.status_code == 201
    assert set(response.json()) == {"callId", "webCallSocketPath"}


def test_preflight_allows_any_origin_and_the_documented_headers(sandbox):
    response = requests.options(
        sandbox.url + "/calls/public/create-web-call",
        headers={
            "Origin": "https://anywhere.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-access-key, voicehub-agent-id",
        },
        timeout=5,
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-methods"] == "POST"
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert allowed == {"content-type", "authorization", "voicehub-agent-id", "x-api-access-key"}


def test_errors_carry_cors_headers_too(sandbox):
    response = post(sandbox, headers={**HEADERS, "x-api-access-key": "nope"})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == "*"


def test_error_body_has_a_message(sandbox):
    body = post(sandbox, headers={**HEADERS, "x-api-access-key": "nope"}).json()
    assert body["statusCode"] == 401
    assert body["message"]


def test_missing_key_is_401(sandbox):
    headers = {k: v for k, v in HEADERS.items() if k != "x-api-access-key"}
    assert post(sandbox, headers=headers).status_code == 401


def test_unknown_type_is_400(sandbox):
    assert post(sandbox, body=b'{"type": "webaudio"}').status_code == 400


def test_body_that_is_not_json_is_400(sandbox):
    assert post(sandbox, body=b"type=text").status_code == 400


def test_credits_run_out(sandbox_server, sandbox):
    # sandbox-key-no-credits has none; each created call costs one.
    response = post(sandbox, headers={**HEADERS, "x-api-access-key": "sandbox-key-no-credits"})
    assert response.status_code == 403


def test_huge_body_is_413(sandbox):
    assert post(sandbox, body=b"x" * 100_000).status_code == 413


def test_get_on_the_endpoint_is_404_not_405(sandbox):
    # 405 means "operation not allowed" in VoiceHub's docs; keep it for that.
    response = requests.get(sandbox.url + "/calls/public/create-web-call", timeout=5)
    assert response.status_code == 404


def test_unknown_path_is_404(sandbox):
    assert post(sandbox, path="/calls/private").status_code == 404
