"""A call started over the relay's socket: the widget opens a start socket with its
panel and sends ``start`` when the visitor picks a mode; ``ready`` comes back on it, one
round trip later. Checked as the create-call endpoint checks its request."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from tests.conftest import relay_app
from tests.relay.test_consumer import closed_with, hang_up, load, next_json, receive_until
from tests.servers import free_port
from webcall_widget.models import Call, CallStatus
from webcall_widget.relay.process import current
from webcall_widget.relay.protocol import CloseCode

pytestmark = pytest.mark.django_db(transaction=True)


def start_path(slug: str) -> str:
    return f"/ws/webcall/start/{slug}/"


async def opened(open_socket, slug, *, origin="http://testserver", application=None):
    socket = open_socket(start_path(slug), origin=origin, application=application)
    connected, _ = await socket.connect(timeout=5)
    assert connected
    return socket


async def refused(socket) -> tuple[dict, int]:
    error = await next_json(socket)
    assert error["type"] == "error" and error["message"]
    return error, await closed_with(socket)


async def test_a_start_frame_creates_the_call_and_ready_comes_back_on_the_same_socket(
    sandbox, agent, open_socket
):
    socket = await opened(open_socket, agent.slug)
    await socket.send_json_to({"type": "start", "mode": "text"})
    ready = await next_json(socket)
    assert (ready["type"], ready["mode"]) == ("ready", "text")
    assert (await next_json(socket))["role"] == "agent"  # the greeting
    await socket.send_json_to({"type": "text", "text": "hello"})
    await receive_until(socket, lambda f: f.get("text") == "You said: hello")
    await hang_up(socket)
    call, transcript = await load(ready["call"])
    assert (call.status, call.end_reason, call.owner) == (
        CallStatus.ENDED,
        "visitor-ended",
        current.id,
    )
    assert call.connected_at is not None and call.origin == "http://testserver"
    assert ("user", "hello", True) in transcript


async def test_pings_are_answered_before_the_start(sandbox, agent, open_socket):
    socket = await opened(open_socket, agent.slug)
    await socket.send_json_to({"type": "ping", "t": 7})
    assert await next_json(socket) == {"type": "pong", "t": 7}


async def test_a_start_socket_for_an_unknown_agent_is_refused_4404(sandbox, open_socket):
    error, code = await refused(await opened(open_socket, "nobody"))
    assert (error["code"], code) == ("agent_not_found", CloseCode.UNKNOWN_CALL)


async def test_a_start_socket_from_another_origin_is_refused_4403(sandbox, agent, open_socket):
    socket = await opened(open_socket, agent.slug, origin="https://elsewhere.example")
    error, code = await refused(socket)
    assert (error["code"], code) == ("origin_not_allowed", CloseCode.ORIGIN_NOT_ALLOWED)


async def test_a_start_socket_of_a_disabled_agent_is_refused_4503(
    sandbox, agent_factory, open_socket
):
    agent = await database_sync_to_async(agent_factory)(is_active=False)
    error, code = await refused(await opened(open_socket, agent.slug))
    assert (error["code"], code) == ("agent_disabled", CloseCode.AGENT_DISABLED)


async def test_any_frame_but_start_first_is_malformed(sandbox, agent, open_socket):
    socket = await opened(open_socket, agent.slug)
    await socket.send_json_to({"type": "text", "text": "hi"})
    error, code = await refused(socket)
    assert (error["code"], code) == ("malformed_frame", CloseCode.MALFORMED_FRAME)


async def test_audio_before_the_start_is_malformed(sandbox, agent, open_socket):
    socket = await opened(open_socket, agent.slug)
    await socket.send_to(bytes_data=b"\x00\x00" * 320)
    _, code = await refused(socket)
    assert code == CloseCode.MALFORMED_FRAME


async def test_a_start_with_an_unknown_mode_is_malformed(sandbox, agent, open_socket):
    socket = await opened(open_socket, agent.slug)
    await socket.send_json_to({"type": "start", "mode": "video"})
    _, code = await refused(socket)
    assert code == CloseCode.MALFORMED_FRAME


async def test_a_mode_the_agent_does_not_offer_is_refused(sandbox, agent_factory, open_socket):
    agent = await database_sync_to_async(agent_factory)(modes=["text"], default_mode="text")
    socket = await opened(open_socket, agent.slug)
    await socket.send_json_to({"type": "start", "mode": "WebAudio"})
    error, code = await refused(socket)
    assert (error["code"], code) == ("mode_not_allowed", CloseCode.MALFORMED_FRAME)


async def test_a_start_over_the_agents_cap_is_refused_with_when_to_try_again(
    sandbox, agent_factory, open_socket
):
    agent = await database_sync_to_async(agent_factory)(max_concurrent_calls=1)
    first = await opened(open_socket, agent.slug)
    await first.send_json_to({"type": "start", "mode": "text"})
    assert (await next_json(first))["type"] == "ready"
    second = await opened(open_socket, agent.slug)
    await second.send_json_to({"type": "start", "mode": "text"})
    error, code = await refused(second)
    assert (error["code"], code) == ("agent_busy", CloseCode.RATE_LIMITED)
    assert error["retryAfter"] == 30


async def test_a_start_voicehub_refuses_is_told_and_recorded(sandbox, agent_factory, open_socket):
    agent = await database_sync_to_async(agent_factory)(api_key="sandbox-key-no-credits")
    socket = await opened(open_socket, agent.slug)
    await socket.send_json_to({"type": "start", "mode": "text"})
    error, code = await refused(socket)
    assert code == CloseCode.UPSTREAM_FAILED
    call = await database_sync_to_async(Call.objects.get)(agent=agent)
    assert (call.status, call.end_reason, call.error_code) == (
        CallStatus.FAILED,
        "create-failed",
        error["code"],
    )


async def test_a_start_while_the_cache_does_not_answer_is_refused_as_our_error(
    sandbox, agent, open_socket, settings, caplog
):
    """Redis restarting: the visitor is told something went wrong on the site's side and
    may start again, rather than the socket breaking (1011) mid-start."""
    socket = await opened(open_socket, agent.slug)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        }
    }
    await socket.send_json_to({"type": "start", "mode": "text"})
    error, code = await refused(socket)
    assert (error["code"], code) == ("relay_error", CloseCode.UPSTREAM_FAILED)
    assert "could not be started" in caplog.text
    assert await database_sync_to_async(Call.objects.count)() == 0


async def test_an_agent_for_logged_in_users_refuses_an_anonymous_start(
    sandbox, agent_factory, open_socket
):
    agent = await database_sync_to_async(agent_factory)(access="logged_in")
    socket = await opened(open_socket, agent.slug)
    await socket.send_json_to({"type": "start", "mode": "text"})
    error, code = await refused(socket)
    assert (error["code"], code) == ("login_required", CloseCode.ACCESS_DENIED)


async def test_a_start_socket_left_without_a_start_closes_4408(sandbox, agent, open_socket):
    socket = await opened(open_socket, agent.slug, application=relay_app(start_wait=0.2))
    assert await closed_with(socket) == CloseCode.TIMEOUT


async def test_a_second_start_on_a_call_is_malformed_and_ends_it(sandbox, agent, open_socket):
    socket = await opened(open_socket, agent.slug)
    await socket.send_json_to({"type": "start", "mode": "text"})
    ready = await next_json(socket)
    await socket.send_json_to({"type": "start", "mode": "text"})
    await receive_until(socket, lambda f: f["type"] == "ended")
    assert await closed_with(socket) == CloseCode.MALFORMED_FRAME
    call, _ = await load(ready["call"])
    assert call.end_reason == "malformed-frame"
