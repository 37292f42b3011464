"""create_web_call against the sandbox over real HTTP."""

from __future__ import annotations

import socket

import pytest
import requests

from tests.webhooks.test_analysis import serving
from webcall_widget.sandbox.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY
from webcall_widget.voicehub import errors
from webcall_widget.voicehub.client import MAX_RESPONSE_BYTES, _parse, create_web_call
from webcall_widget.voicehub.events import HEADER_AGENT_ID, HEADER_API_KEY, Mode


def create(sandbox, *, key=SANDBOX_API_KEY, agent=SANDBOX_AGENT_ID, mode=Mode.TEXT, timeout=5):
    return create_web_call(sandbox.url, api_key=key, agent_id=agent, mode=mode, timeout=timeout)


def test_created_call_has_the_sandbox_call_id_and_socket_path(sandbox):
    created = create(sandbox)
    assert created.call_id in sandbox.state.calls
    assert created.socket_path == "/socket.io"


@pytest.mark.parametrize("mode", list(Mode))
def test_each_mode_is_sent_with_its_exact_spelling(sandbox, mode):
    created = create(sandbox, mode=mode)
    assert sandbox.state.calls[created.call_id].mode is mode


def test_400_is_agent_misconfigured(sandbox):
    with pytest.raises(errors.AgentMisconfigured) as caught:
        create(sandbox, agent="misconfigured-agent")
    assert caught.value.status == 400


def test_unknown_agent_is_agent_misconfigured(sandbox):
    with pytest.raises(errors.AgentMisconfigured):
        create(sandbox, agent="nobody")


def test_401_is_invalid_api_key(sandbox):
    with pytest.raises(errors.InvalidApiKey) as caught:
        create(sandbox, key="wrong-key")
    assert caught.value.status == 401


def test_403_is_insufficient_credits(sandbox):
    with pytest.raises(errors.InsufficientCredits) as caught:
        create(sandbox, key="sandbox-key-no-credits")
    assert caught.value.status == 403


def test_405_is_operation_not_allowed(sandbox):
    with pytest.raises(errors.OperationNotAllowed) as caught:
        create(sandbox, agent="text-echo-agent", mode=Mode.WEB_AUDIO)
    assert caught.value.status == 405


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_upstream_unavailable(sandbox, status):
    sandbox.faults.create_status = status
    with pytest.raises(errors.UpstreamUnavailable) as caught:
        create(sandbox)
    assert caught.value.status == status


def test_other_4xx_is_upstream_unavailable(sandbox):
    sandbox.faults.create_status = 404
    with pytest.raises(errors.UpstreamUnavailable):
        create(sandbox)


def test_slow_answer_times_out_as_upstream_unavailable(sandbox):
    sandbox.faults.create_delay = 2.0
    with pytest.raises(errors.UpstreamUnavailable, match="timed out"):
        create(sandbox, timeout=0.3)


def test_closed_port_is_upstream_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(errors.UpstreamUnavailable, match="could not reach"):
        create_web_call(
            f"http://127.0.0.1:{port}",
            api_key="k",
            agent_id="a",
            mode=Mode.TEXT,
            timeout=2,
        )


def test_older_webSocketPath_spelling_is_accepted(sandbox):
    sandbox.faults.create_body = b'{"callId": "c-1", "webSocketPath": "/ws/c-1"}'
    created = create(sandbox)
    assert (created.call_id, created.socket_path) == ("c-1", "/ws/c-1")


def test_numeric_call_id_is_kept_as_text(sandbox):
    sandbox.faults.create_body = b'{"callId": 42, "webCallSocketPath": "/s"}'
    assert create(sandbox).call_id == "42"


@pytest.mark.parametrize(
    "body",
    [
        b"<html>oops</html>",
        b"[]",
        b'{"webCallSocketPath": "/s"}',
        b'{"callId": "", "webCallSocketPath": "/s"}',
        b'{"callId": true, "webCallSocketPath": "/s"}',
        b'{"callId": "c"}',
        b'{"callId": "c", "webCallSocketPath": 5}',
    ],
)
def test_unusable_success_body_is_a_bad_response(sandbox, body):
    sandbox.faults.create_body = body
    with pytest.raises(errors.UpstreamBadResponse):
        create(sandbox)


def test_huge_answer_is_a_bad_response_without_reading_it_all(sandbox):
    sandbox.faults.create_body = b'{"callId":"' + b"x" * (MAX_RESPONSE_BYTES * 4) + b'"}'
    with pytest.raises(errors.UpstreamBadResponse, match="larger than"):
        create(sandbox)


def test_headers_carry_the_key_and_agent_and_nothing_else_does(sandbox):
    seen: dict[str, str] = {}

    class Capturing(requests.Session):
        def post(self, url, data=None, json=None, **kwargs):
            seen.update(kwargs["headers"], url=url, body=data)
            return super().post(url, data, json, **kwargs)

    with Capturing() as session:  # records the request; the request itself is real
        create_web_call(
            sandbox.url,
            api_key=SANDBOX_API_KEY,
            agent_id=SANDBOX_AGENT_ID,
            mode=Mode.TEXT_AUDIO,
            timeout=5,
            session=session,
        )
    assert seen[HEADER_API_KEY] == SANDBOX_API_KEY
    assert seen[HEADER_AGENT_ID] == SANDBOX_AGENT_ID
    assert seen["url"] == sandbox.url + "/calls/public/create-web-call"
    assert seen["body"] == '{"type": "TextAudio"}'


def test_error_messages_never_quote_the_api_key(sandbox):
    secret = "sk-live-" + "s3cr3t" * 4
    for fault in (None, 500):
        sandbox.faults.create_status = fault
        with pytest.raises(errors.VoiceHubError) as caught:
            create(sandbox, key=secret)
        assert secret not in str(caught.value)
        assert secret not in repr(caught.value)


def test_upstream_quoting_the_key_back_is_redacted():
    secret = "sk-live-quoted-back"
    body = f'{{"message": "key {secret} is invalid"}}'.encode()
    with pytest.raises(errors.InvalidApiKey) as caught:
        _parse(401, body, secret=secret)
    assert secret not in str(caught.value)
    assert "[redacted]" in str(caught.value)


def test_an_answer_cut_off_midway_is_upstream_unavailable():
    head = [(b"content-length", b"4096")]  # and far fewer bytes come
    with (
        serving(201, body=b'{"callId": "c1", "webCallSo', headers=head) as host,
        pytest.raises(errors.UpstreamUnavailable, match="answer was cut off"),
    ):
        create_web_call(host.url, api_key="k", agent_id="a", mode=Mode.TEXT, timeout=5)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"Bad Request", ""),
        (
            b'{"message": ["agentId must be a UUID", "type is required"]}',
            ": agentId must be a UUID; type is required",
        ),
        (b'{"message": {"code": 17}}', ""),
        (b'["not", "an", "object"]', ""),
    ],
)
def test_voicehubs_own_words_about_an_error_are_quoted_when_it_sent_some(body, said):
    with pytest.raises(errors.AgentMisconfigured) as caught:
        _parse(400, body, secret="k")
    assert str(caught.value) == "create-web-call answered 400" + said
