"""Live-call limits and failures, through the consumer, against the sandbox over real sockets."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import OperationalError

from tests.conftest import create_call, relay_app, socket_path
from tests.relay.test_consumer import (
    closed_with,
    live_call,
    load,
    next_json,
    open_call,
    receive_until,
    refusal,
    tasks_left,
    voicehub_call_id,
)
from webcall_widget.conf import get_settings
from webcall_widget.models import CallStatus
from webcall_widget.relay import records
from webcall_widget.relay.mailbox import aend_call
from webcall_widget.relay.protocol import CloseCode
from webcall_widget.voicehub.opening import open_session

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def limited(sandbox, settings):
    def apply(**values):
        settings.WEBCALL_WIDGET = {**settings.WEBCALL_WIDGET, "LIMITS": values}

    return apply


# limits on a live call


async def test_idle_call_is_closed_4408_and_recorded(limited, agent, async_client, open_socket):
    limited(IDLE_SECONDS=1)
    call_id, socket = await live_call(async_client, open_socket, agent)
    frames = await receive_until(socket, lambda f: f["type"] == "ended")
    assert frames[-2] == {
        "type": "error",
        "code": "timeout",
        "message": "The conversation ended because it was idle or too long.",
    }
    assert frames[-1]["reason"] == "idle-timeout"
    assert await closed_with(socket) == CloseCode.TIMEOUT
    call, transcript = await load(call_id)
    assert (call.status, call.end_reason, call.error_code) == (
        CallStatus.ENDED,
        "idle-timeout",
        "timeout",
    )
    assert transcript  # the greeting is kept


async def test_talking_keeps_a_call_from_going_idle(limited, agent, async_client, open_socket):
    limited(IDLE_SECONDS=1)
    _, socket = await live_call(async_client, open_socket, agent)
    started = time.monotonic()
    while time.monotonic() - started < 2.5:
        await socket.send_json_to({"type": "text", "text": "still here"})
        await receive_until(socket, lambda f: f.get("final") and f["role"] == "agent")
        await asyncio.sleep(0.4)
    await socket.send_json_to({"type": "ping", "t": 1})
    assert (await receive_until(socket, lambda f: f["type"] == "pong"))[-1]["t"] == 1


async def test_pings_alone_do_not_keep_a_call_alive(limited, agent, async_client, open_socket):
    limited(IDLE_SECONDS=1)
    _, socket = await live_call(async_client, open_socket, agent)
    for _ in range(4):
        await socket.send_json_to({"type": "ping", "t": 0})
        await asyncio.sleep(0.4)
    frames = await receive_until(socket, lambda f: f["type"] == "ended")
    assert frames[-1]["reason"] == "idle-timeout"


async def voice_call_streaming(async_client, open_socket, agent, frame: bytes):
    """A voice call past ``ready`` whose microphone then sends ``frame`` for 2 s."""
    _, socket = await open_call(async_client, open_socket, agent, "WebAudio")
    assert (await next_json(socket))["type"] == "ready"
    for _ in range(100):
        await socket.send_to(bytes_data=frame)
        await asyncio.sleep(0.02)
    return socket


async def test_an_open_microphone_sending_silence_does_not_keep_a_call_alive(
    limited, agent, async_client, open_socket
):
    limited(IDLE_SECONDS=1)
    socket = await voice_call_streaming(async_client, open_socket, agent, bytes(640))
    frames = await receive_until(socket, lambda f: f["type"] == "ended")
    assert frames[-1]["reason"] == "idle-timeout"


async def test_speaking_keeps_a_voice_call_from_going_idle(
    limited, agent, async_client, open_socket
):
    from webcall_widget.sandbox.audio import tone

    limited(IDLE_SECONDS=1)
    speech = tone((300.0, 450.0), 0.02, 16000, level=0.2)  # one long utterance: no reply
    socket = await voice_call_streaming(async_client, open_socket, agent, speech)
    await socket.send_json_to({"type": "ping", "t": 2})
    frames = await receive_until(socket, lambda f: f["type"] in ("pong", "ended"))
    assert frames[-1] == {"type": "pong", "t": 2}


async def test_call_longer_than_the_agent_allows_is_closed_4408(
    sandbox, agent_factory, async_client, open_socket
):
    agent = await database_sync_to_async(agent_factory)(max_call_seconds=1)
    call_id, socket = await live_call(async_client, open_socket, agent)
    while True:
        await socket.send_json_to({"type": "text", "text": "busy talking"})
        frames = await receive_until(socket, lambda f: f["type"] == "ended" or f.get("final"))
        if frames[-1]["type"] == "ended":
            break
        await asyncio.sleep(0.1)  # a person typing, not a flood
    assert frames[-1]["reason"] == "max-duration"
    assert await closed_with(socket) == CloseCode.TIMEOUT


async def test_frame_flood_is_closed_4429(limited, agent, async_client, open_socket):
    limited(FRAMES_PER_SECOND=5)
    call_id, socket = await live_call(async_client, open_socket, agent)
    for _ in range(40):
        await socket.send_json_to({"type": "ping", "t": 0})
    frames = await receive_until(socket, lambda f: f["type"] == "ended", limit=60)
    assert {
        "type": "error",
        "code": "rate_limited",
        "message": "The assistant is busy right now. Please try again in a little while.",
    } in frames
    assert await closed_with(socket) == CloseCode.RATE_LIMITED
    call, _ = await load(call_id)
    assert call.end_reason == "frame-rate-limit"


async def test_a_burst_within_the_budget_is_fine(limited, agent, async_client, open_socket):
    limited(FRAMES_PER_SECOND=20)
    _, socket = await live_call(async_client, open_socket, agent)
    for n in range(30):  # bursts may reach twice the rate
        await socket.send_json_to({"type": "ping", "t": n})
    pongs = await receive_until(socket, lambda f: f.get("t") == 29, limit=40)
    assert [f["t"] for f in pongs if f["type"] == "pong"] == list(range(30))


# who may hold the socket


@pytest.fixture
def user_factory(db):
    def make(name, **fields):
        return get_user_model().objects.create_user(name, password="pw", **fields)

    return make


async def login_call(async_client, agent, user):
    await database_sync_to_async(async_client.force_login)(user)
    response = await create_call(async_client, agent.slug)
    assert response.status_code == 201, response.content
    return response


async def test_login_required_socket_refuses_someone_else(
    sandbox, agent_factory, user_factory, async_client, open_socket
):
    agent = await database_sync_to_async(agent_factory)(access="authenticated")
    owner = await database_sync_to_async(user_factory)("owner")
    other = await database_sync_to_async(user_factory)("other")
    response = await login_call(async_client, agent, owner)
    socket = open_socket(socket_path(response))
    socket.scope["user"] = other
    assert await refusal(socket) == ("login_required", CloseCode.ACCESS_DENIED)


async def test_login_required_socket_refuses_a_socket_without_a_user(
    sandbox, agent_factory, user_factory, async_client, open_socket, caplog
):
    agent = await database_sync_to_async(agent_factory)(access="authenticated")
    owner = await database_sync_to_async(user_factory)("owner")
    response = await login_call(async_client, agent, owner)
    socket = open_socket(socket_path(response))  # no AuthMiddlewareStack: no scope["user"]
    assert await refusal(socket) == ("login_required", CloseCode.ACCESS_DENIED)
    assert "AuthMiddlewareStack" in caplog.text


async def test_login_required_socket_takes_the_user_who_created_the_call(
    sandbox, agent_factory, user_factory, async_client, open_socket
):
    agent = await database_sync_to_async(agent_factory)(access="authenticated")
    owner = await database_sync_to_async(user_factory)("owner")
    response = await login_call(async_client, agent, owner)
    socket = open_socket(socket_path(response))
    socket.scope["user"] = owner
    await socket.connect(timeout=5)
    assert (await next_json(socket))["type"] == "ready"


# staff ends a call


async def test_ending_a_call_from_elsewhere_tells_the_visitor(
    sandbox, agent, async_client, open_socket
):
    call_id, socket = await live_call(async_client, open_socket, agent)
    await aend_call(call_id)  # what the admin action sends through the channel layer
    frames = await receive_until(socket, lambda f: f["type"] == "ended")
    assert frames[-2]["code"] == "ended_by_staff"
    assert frames[-1]["reason"] == "ended-by-staff"
    assert await closed_with(socket) == CloseCode.NORMAL
    call, _ = await load(call_id)
    assert call.end_reason == "ended-by-staff"


# the upstream misbehaves mid-call


async def test_stalled_upstream_is_noticed_and_closed_4502(
    sandbox, agent, async_client, open_socket
):
    call_id, socket = await live_call(async_client, open_socket, agent)
    await socket.send_json_to({"type": "text", "text": "before the stall"})
    await receive_until(socket, lambda f: f.get("final") and f["role"] == "agent")
    sandbox.faults.stall = True  # nothing more comes, not even heartbeats
    frames = await receive_until(socket, lambda f: f["type"] == "ended")
    assert next(f for f in frames if f["type"] == "error")["code"] == "upstream_lost"
    assert await closed_with(socket) == CloseCode.UPSTREAM_FAILED
    call, transcript = await load(call_id)
    assert call.status == CallStatus.FAILED
    assert "missed heartbeats" in call.error_detail
    assert ("user", "before the stall", True) in transcript


async def test_a_frozen_upstream_is_noticed_however_busy_the_visitor_is(
    sandbox, agent, async_client, open_socket
):
    call_id, socket = await live_call(async_client, open_socket, agent)
    sandbox.faults.stall = True
    started = time.monotonic()
    frames: list[dict] = []
    while not any(f["type"] == "ended" for f in frames):
        # Heartbeats notice it within 3 s (1 s interval, 2 s timeout); typing must not hide it.
        assert time.monotonic() - started < 30, "the frozen upstream went unnoticed"
        await socket.send_json_to({"type": "text", "text": "are you there?"})
        typed_at = time.monotonic()
        while time.monotonic() - typed_at < 0.4:
            # (a receive that times out would cancel the consumer: asgiref's rule)
            if not await socket.receive_nothing(timeout=0.05):
                frames.append(await socket.receive_json_from())
                if frames[-1]["type"] == "ended":
                    break
    assert await closed_with(socket) == CloseCode.UPSTREAM_FAILED
    call, _ = await load(call_id)
    assert call.status == CallStatus.FAILED
    assert "missed heartbeats" in call.error_detail


async def test_garbage_from_the_upstream_socket_closes_4502(
    sandbox, agent, async_client, open_socket
):
    call_id, socket = await live_call(async_client, open_socket, agent)
    sandbox.faults.corrupt_after_text = "hello"
    await socket.send_json_to({"type": "text", "text": "hello"})
    await receive_until(socket, lambda f: f["type"] == "ended")
    assert await closed_with(socket) == CloseCode.UPSTREAM_FAILED
    call, _ = await load(call_id)
    assert "Socket.IO protocol" in call.error_detail


async def test_upstream_refusing_the_socket_closes_4502(sandbox, agent, async_client, open_socket):
    sandbox.faults.refuse_socket = True
    call_id, socket = await open_call(async_client, open_socket, agent)
    assert (await next_json(socket))["code"] == "upstream_failed"
    assert await closed_with(socket) == CloseCode.UPSTREAM_FAILED
    call, _ = await load(call_id)
    assert "refused" in call.error_detail


@pytest.fixture
def slow_replies(sandbox):
    """The echo agent types its replies a word every 200 ms."""
    original = sandbox.app.config
    sandbox.app.config = dataclasses.replace(original, word_delay=0.2)
    yield
    sandbox.app.config = original


async def test_visitor_tab_closing_mid_reply_ends_both_sides_and_keeps_the_transcript(
    sandbox, slow_replies, agent, async_client, open_socket
):
    before = asyncio.all_tasks()
    call_id, socket = await live_call(async_client, open_socket, agent)
    await socket.send_json_to({"type": "text", "text": "a long question with many words in it"})
    await receive_until(socket, lambda f: f.get("final") is False)  # the reply is streaming
    await socket.disconnect(code=1001)
    vh_call = voicehub_call_id(sandbox)
    await sandbox.state.await_for(lambda: sandbox.state.calls[vh_call].ended)
    call, transcript = await load(call_id)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "visitor-disconnected")
    assert ("user", "a long question with many words in it", True) in transcript
    assert any(role == "agent" and not final for role, _, final in transcript)  # the partial
    assert tasks_left(before) == []


async def test_a_call_ended_by_a_limit_leaves_its_channels_upstream(
    limited, sandbox, agent, async_client, open_socket
):
    limited(IDLE_SECONDS=1)
    _, socket = await live_call(async_client, open_socket, agent)
    await receive_until(socket, lambda f: f["type"] == "ended")
    vh_call = voicehub_call_id(sandbox)
    await sandbox.state.await_for(lambda: sandbox.state.calls[vh_call].ended)
    assert [r.event for r in sandbox.state.events(vh_call, "in")][-1] == "channel.leave"


# every step of ending a call runs, whatever fails before it


class LockedTranscript(records.DatabaseRecorder):
    """Every transcript write fails as SQLite does under a long lock. (The real lock cannot
    be held on cue across the relay's worker thread, so the relay is given this recorder.)"""

    async def add_messages(self, call_id, messages):
        raise OperationalError("database is locked")


class WontClose:
    """An upstream session whose close fails; everything else is the real session's."""

    def __init__(self, session):
        self._session = session

    def __getattr__(self, name):
        return getattr(self._session, name)

    async def close(self):
        raise OSError("the upstream would not close")


async def opens_one_that_wont_close(**kwargs):
    return WontClose(await open_session(**kwargs))


async def test_a_transcript_that_cannot_be_written_does_not_keep_the_call_open(
    sandbox, agent, async_client, open_socket
):
    relay = relay_app(recorder=LockedTranscript(get_settings()))
    call_id, socket = await live_call(async_client, open_socket, agent, application=relay)
    await socket.send_json_to({"type": "text", "text": "hello"})
    await receive_until(socket, lambda f: f.get("final") and f["role"] == "agent")
    await socket.send_json_to({"type": "end"})
    frames = await receive_until(socket, lambda f: f["type"] == "ended")
    assert frames[-1]["reason"] == "visitor-ended"
    assert await closed_with(socket) == CloseCode.NORMAL
    call, transcript = await load(call_id)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "visitor-ended")
    assert transcript == []


async def test_an_upstream_that_fails_to_close_does_not_keep_the_call_open(
    sandbox, agent, async_client, open_socket
):
    relay = relay_app(open_upstream=opens_one_that_wont_close)
    call_id, socket = await live_call(async_client, open_socket, agent, application=relay)
    await socket.send_json_to({"type": "end"})
    await receive_until(socket, lambda f: f["type"] == "ended")
    assert await closed_with(socket) == CloseCode.NORMAL
    call, _ = await load(call_id)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "visitor-ended")
    vh_call = voicehub_call_id(sandbox)
    await sandbox.state.await_for(lambda: sandbox.state.calls[vh_call].ended)  # dropped


async def test_an_overlong_end_reason_from_upstream_is_stored_cut(
    sandbox, agent, async_client, open_socket
):
    call_id, socket = await live_call(async_client, open_socket, agent)
    reason = "the agent transferred the caller to a human colleague in the billing department"
    sandbox.faults.hangup_reason = reason
    await socket.send_json_to({"type": "text", "text": "goodbye"})
    frames = await receive_until(socket, lambda f: f["type"] == "ended")
    assert frames[-1]["reason"] == reason[:63] + "…"
    assert await closed_with(socket) == CloseCode.NORMAL
    call, _ = await load(call_id)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, reason[:63] + "…")


# a process that relays as many voice calls as it can


async def test_a_voice_call_past_the_process_capacity_is_refused_4429(
    limited, agent, async_client, open_socket
):
    limited(VOICE_CALLS_PER_PROCESS=1)
    first, first_socket = await live_call(async_client, open_socket, agent, "WebAudio")
    response = await create_call(async_client, agent.slug, "WebAudio")
    assert response.status_code == 201, response.content
    refused = open_socket(socket_path(response))
    assert await refusal(refused) == ("agent_busy", CloseCode.RATE_LIMITED)
    call, _ = await load(response.json()["call"])
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "relay-busy")
    _, text_socket = await live_call(async_client, open_socket, agent, "text")  # not counted
    await text_socket.send_json_to({"type": "end"})
    await first_socket.send_json_to({"type": "end"})
    await receive_until(first_socket, lambda f: f["type"] == "ended")
