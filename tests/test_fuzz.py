"""Property-based tests: whatever arrives, the answer is a clear error, never a crash."""

from __future__ import annotations

import contextlib
import json
import string
from typing import Any
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webcall_widget.embed import InvalidSlug, is_slug, script_tag
from webcall_widget.relay import protocol
from webcall_widget.relay.protocol import CloseCode, ProtocolError
from webcall_widget.voicehub import client as voicehub_client
from webcall_widget.voicehub import socketio
from webcall_widget.voicehub.errors import VoiceHubError
from webcall_widget.voicehub.events import Mode

FIXTURES_OK = settings(
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
frame_like = st.dictionaries(
    st.sampled_from(["type", "text", "t", "extra"]),
    json_values | st.sampled_from(["text", "end", "ping", "pong", "ready"]),
    max_size=4,
).map(json.dumps)
any_text = st.one_of(st.text(max_size=200), frame_like, st.just(""), json_values.map(json.dumps))


@st.composite
def deeply_nested(draw, max_depth=6000):
    """JSON nested past Python's recursion limit (and not): open, maybe closed again."""
    depth = draw(st.integers(min_value=1, max_value=max_depth))
    opening, closing = draw(
        st.sampled_from([("[", "]"), ('{"a":', "}"), ('{"type":"text","text":[', "]}")])
    )
    core = draw(st.sampled_from(["", "1", '"x"', "[]"]))
    closed = draw(st.booleans())
    return opening * depth + core + (closing * depth if closed else "")


# browser frames


@given(text=any_text, mode=st.sampled_from(list(Mode)))
def test_any_text_frame_is_a_frame_or_a_protocol_error(text, mode):
    try:
        frame = protocol.parse(text, None, mode=mode, max_text_length=50, max_frame_bytes=300)
    except ProtocolError as exc:
        assert exc.code and exc.message
        assert exc.close_code in (None, CloseCode.MALFORMED_FRAME, CloseCode.FRAME_TOO_LARGE)
    else:
        assert isinstance(frame, protocol.Text | protocol.End | protocol.Ping)


@settings(deadline=None)  # a busy machine takes 300 ms over a deep one: not what is tested
@given(text=deeply_nested(), mode=st.sampled_from(list(Mode)))
def test_any_nesting_depth_is_a_malformed_frame_not_a_crash(text, mode):
    with pytest.raises(ProtocolError) as caught:  # none of them is a frame of protocol v1
        protocol.parse(text, None, mode=mode, max_text_length=50, max_frame_bytes=200_000)
    assert caught.value.close_code is CloseCode.MALFORMED_FRAME


@given(data=st.binary(max_size=600), mode=st.sampled_from(list(Mode)))
def test_any_binary_frame_is_audio_or_a_protocol_error(data, mode):
    try:
        frame = protocol.parse(None, data, mode=mode, max_text_length=50, max_frame_bytes=300)
    except ProtocolError as exc:
        assert exc.code
    else:
        assert frame == protocol.AudioIn(data)
        assert mode.has_audio and len(data) % 2 == 0 and len(data) <= 300


# what the upstream sends


@given(frames=st.lists(st.text(max_size=60) | st.binary(max_size=20), max_size=8))
def test_any_upstream_frames_decode_or_raise_a_protocol_violation(frames):
    decoder = socketio.Decoder()
    for frame in frames:
        try:
            if isinstance(frame, str):
                decoder.receive_text(frame)
            else:
                decoder.receive_binary(frame)
        except socketio.ProtocolViolation:
            decoder = socketio.Decoder()


@given(
    prefix=st.sampled_from(["0", "2", "40", "42", "44", "451-", "452-", "43", "41"]),
    payload=json_values.map(json.dumps) | st.text(max_size=30),
)
def test_plausible_socketio_packets_never_crash_the_decoder(prefix, payload):
    with contextlib.suppress(socketio.ProtocolViolation):
        socketio.Decoder().receive_text(prefix + payload)


# HTTP: the widget's endpoints


ERROR_STATUSES = {400, 403, 404, 405, 413, 415, 429, 502, 503}
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


@FIXTURES_OK
@given(
    body=st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | deeply_nested(max_depth=4000).map(str.encode)
    | st.binary(min_size=4097, max_size=5000),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded", ""]
    ),
    origin=st.none() | header_values | st.sampled_from(["http://testserver", "null"]),
)
def test_create_call_answers_any_request_with_json(
    sandbox, agent, client, body, content_type, origin
):
    headers = {"Origin": origin} if origin is not None else {}
    response = client.post(
        f"/webcall/agents/{agent.slug}/calls",
        data=body,
        content_type=content_type,
        headers=headers,
    )
    assert response.status_code == 201 or response.status_code in ERROR_STATUSES
    data = response.json()
    if response.status_code == 201:
        assert set(data) == {"call", "mode", "socket", "expiresIn"}
    else:
        assert {"code", "message"} <= set(data["error"]) <= {"code", "message", "detail"}


@FIXTURES_OK
@given(
    slug=st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=30),
    lang=header_values,
    accept_language=header_values,
)
def test_config_answers_any_slug_and_language(agent, client, slug, lang, accept_language):
    response = client.get(
        f"/webcall/agents/{slug}/config",
        {"lang": lang},
        headers={"Accept-Language": accept_language},
    )
    assert response.status_code in (200, 404)
    assert "error" in response.json() or "agent" in response.json()


@FIXTURES_OK
@given(method=st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
def test_other_methods_are_refused_cleanly(agent, client, method):
    response = client.generic(method, f"/webcall/agents/{agent.slug}/calls")
    assert response.status_code in (200, 405)  # OPTIONS is answered for CORS


WEBHOOK_SECRET = "whsec-fuzz-0123456789"
webhook_payloads = st.fixed_dictionaries(
    {},
    optional={
        "eventType": st.sampled_from(
            ["CallStatusChanged", "RecordingsAvailable", "AnalysisResultReady", "Other"]
        )
        | json_values,
        "eventId": json_values,
        "callId": json_values,
        "status": json_values,
        "timestamp": json_values,
        "recordings": json_values,
        "analysisId": json_values,
        "analysisResultUrl": json_values
        | st.sampled_from(["http://voicehub.invalid/a/1", "/a/1", "//x/a", "http://x@y/"]),
    },
)


@FIXTURES_OK
@given(
    body=webhook_payloads.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=300)
    | deeply_nested(max_depth=4000).map(str.encode),
    secret=st.none() | header_values | st.just(WEBHOOK_SECRET),
)
def test_the_webhook_answers_any_request_with_json_and_never_fails(
    agent_factory, client, body, secret
):
    agent = agent_factory(webhook_secret=WEBHOOK_SECRET)
    headers = {} if secret is None else {"x-webhook-secret": secret}
    response = client.post(
        f"/webcall/agents/{agent.slug}/webhook",
        data=body,
        content_type="application/json",
        headers=headers,
    )
    if secret != WEBHOOK_SECRET:
        assert response.status_code == 401
    else:
        assert response.status_code in (200, 400)
    assert isinstance(response.json(), dict)


@FIXTURES_OK
@given(slug=st.text(min_size=1, max_size=30), version=header_values, origin=header_values)
def test_worklet_answers_any_slug_version_and_origin(agent, client, slug, version, origin):
    response = client.get(
        f"/webcall/agents/{quote(slug, safe='')}/audio-worklet.js",
        {"v": version},
        headers={"Origin": origin},
    )
    assert response.status_code in (200, 404)
    if response.status_code == 200:
        assert response["Content-Type"].startswith("text/javascript")


# VoiceHub's credentials: whatever an admin stored, a VoiceHubError, never the value


credentials = st.text(min_size=1, max_size=40).map(lambda text: "sk-zq" + text)


@FIXTURES_OK
@given(api_key=credentials, agent_id=st.none() | credentials)
def test_any_credentials_are_sent_or_refused_with_a_voicehub_error(sandbox, api_key, agent_id):
    try:
        voicehub_client.create_web_call(
            sandbox.url,
            api_key=api_key,
            agent_id=agent_id or "echo-agent",
            mode=Mode.TEXT,
            timeout=5,
        )
    except VoiceHubError as exc:
        assert exc.code and api_key not in str(exc)
        assert agent_id is None or agent_id not in str(exc)


# embedding


@given(slug=st.text(max_size=40))
def test_any_slug_gives_a_script_tag_or_invalid_slug(slug):
    try:
        html = script_tag(slug)
    except InvalidSlug:
        assert not is_slug(slug)
    else:
        assert f'data-agent="{slug}"' in html


# HTTP: the sandbox, over a real socket


@FIXTURES_OK
@given(
    body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()),
    # HTTP trims a header value's surrounding whitespace; requests refuses to send it.
    key=st.none() | header_values.map(str.strip),
    agent_id=st.none() | header_values.map(str.strip),
)
def test_sandbox_answers_any_create_request_without_a_server_error(sandbox, body, key, agent_id):
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["x-api-access-key"] = key
    if agent_id is not None:
        headers["voicehub-agent-id"] = agent_id
    response = requests.post(
        sandbox.url + "/calls/public/create-web-call", data=body, headers=headers, timeout=5
    )
    assert response.status_code in (201, 400, 401, 403, 405)
    assert response.headers["access-control-allow-origin"] == "*"


# the relay, with a live call behind it


KNOWN_CLOSES = {int(code) for code in CloseCode}


async def _open_path(path: str) -> tuple[list[dict], int]:
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from webcall_widget.routing import websocket_urlpatterns

    socket = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    connected, _ = await socket.connect(timeout=5)
    assert connected
    received: list[dict[str, Any]] = []
    while True:
        output = await socket.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            await socket.wait(timeout=5)
            return received, output["code"]
        received.append(json.loads(output["text"]))


@settings(deadline=None, max_examples=60)
@given(path=st.text(max_size=40).map(lambda text: "/" + text))
def test_any_websocket_path_is_accepted_then_closed_with_a_code(path):
    import asyncio

    received, close_code = asyncio.run(_open_path(path))
    assert close_code in (CloseCode.UNKNOWN_CALL, CloseCode.BAD_TOKEN)
    assert [frame["type"] for frame in received] == ["error"]


async def _drive(path: str, frames: list[str | bytes]) -> tuple[list[dict], int | None]:
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from webcall_widget.routing import websocket_urlpatterns

    socket = WebsocketCommunicator(
        URLRouter(websocket_urlpatterns),
        path,
        headers=[(b"host", b"testserver"), (b"origin", b"http://testserver")],
    )
    await socket.connect(timeout=5)
    received: list[dict] = []
    close_code = None
    try:
        for frame in frames:  # sent raw: empty frames too, which send_to refuses
            key = "bytes" if isinstance(frame, bytes) else "text"
            await socket.send_input({"type": "websocket.receive", key: frame})
        await socket.send_to(text_data='{"type":"ping","t":424242}')
        while True:
            output = await socket.receive_output(timeout=5)
            if output["type"] == "websocket.close":
                close_code = output["code"]
                break
            if output.get("text") is not None:
                received.append(json.loads(output["text"]))
                if received[-1] == {"type": "pong", "t": 424242}:
                    break
    finally:
        await socket.disconnect(timeout=5)
    return received, close_code


@pytest.mark.django_db(transaction=True)
@settings(
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    frames=st.lists(
        any_text
        | st.binary(max_size=200)
        | st.just('{"type":"text","text":"hi"}')
        | deeply_nested(max_depth=3000),
        min_size=1,
        max_size=6,
    )
)
def test_any_frames_from_a_browser_leave_the_relay_answering_or_closed_with_a_code(
    sandbox, agent, client, settings, frames
):
    import asyncio
    from urllib.parse import urlsplit

    settings.WEBCALL_WIDGET = {
        **settings.WEBCALL_WIDGET,
        "LIMITS": {"CALLS_PER_MINUTE_PER_CLIENT": 1000, "CONCURRENT_CALLS_PER_AGENT": 1000},
    }
    response = client.post(
        f"/webcall/agents/{agent.slug}/calls",
        data=json.dumps({"mode": "TextAudio"}),
        content_type="application/json",
    )
    assert response.status_code == 201
    received, close_code = asyncio.run(_drive(urlsplit(response.json()["socket"]).path, frames))
    assert all(isinstance(frame.get("type"), str) for frame in received)
    if close_code is None:
        assert received[-1] == {"type": "pong", "t": 424242}  # still answering
    else:
        assert close_code in KNOWN_CLOSES
