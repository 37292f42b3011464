"""The relay consumer, driven through the package's routing, talking to the sandbox over
real sockets (the sandbox runs on 127.0.0.1 in its own thread)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from django.core import signing

from tests.conftest import another_process, create_call, relay_app, socket_path
from webcall_widget.models import Call, CallStatus, TranscriptMessage
from webcall_widget.relay import consumer, lifecycle, tokens
from webcall_widget.relay.bridge import Bridge
from webcall_widget.relay.process import RelayProcess, current
from webcall_widget.relay.protocol import CloseCode
from webcall_widget.sandbox.config import SANDBOX_API_KEY

pytestmark = pytest.mark.django_db(transaction=True)


async def next_json(socket, *, wait=5):
    """The next text frame as JSON, skipping agent audio (the sandbox chimes on join)."""
    while True:
        output = await socket.receive_output(timeout=wait)
        assert output["type"] == "websocket.send", output
        if output.get("text") is not None:
            return json.loads(output["text"])


async def receive_until(socket, predicate, *, limit=50):
    """Frames up to and including the first one that matches ``predicate``."""
    frames = []
    for _ in range(limit):
        frame = await next_json(socket)
        frames.append(frame)
        if predicate(frame):
            return frames
    raise AssertionError(f"no matching frame in {frames}")


async def closed_with(socket) -> int:
    """The close code the consumer sent (after any frames still queued)."""
    while True:
        output = await socket.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            return output["code"]


async def open_call(
    async_client, open_socket, agent, mode="text", *, origin="http://testserver", application=None
):
    response = await create_call(async_client, agent.slug, mode)
    assert response.status_code == 201, response.content
    socket = open_socket(socket_path(response), origin=origin, application=application)
    connected, _ = await socket.connect(timeout=5)
    assert connected
    return response.json()["call"], socket


async def live_call(async_client, open_socket, agent, mode="text", *, application=None):
    """A call past ``ready`` and, where the text channel is joined, the greeting."""
    call_id, socket = await open_call(
        async_client, open_socket, agent, mode, application=application
    )
    ready = await next_json(socket)
    assert ready["type"] == "ready", ready
    greeting = await next_json(socket)
    assert greeting["role"] == "agent"
    return call_id, socket


async def refusal(socket) -> tuple[str, int]:
    """Connect a socket the relay must refuse: its error code, and the close code after."""
    connected, _ = await socket.connect(timeout=5)
    assert connected  # accepted first, so that the browser sees our close code
    error = await next_json(socket)
    assert error["type"] == "error" and error["message"]
    return error["code"], await closed_with(socket)


async def hang_up(socket):
    """The visitor ends the call: the relay confirms, then closes normally."""
    await socket.send_json_to({"type": "end"})
    assert await next_json(socket) == {"type": "ended", "reason": "visitor-ended"}
    assert await closed_with(socket) == CloseCode.NORMAL


async def hang_up_after_audio(socket):
    """``hang_up``, skipping what is still on its way (agent audio, a late greeting)."""
    await socket.send_json_to({"type": "end"})
    while (frame := await next_json(socket))["type"] != "ended":
        pass
    assert frame == {"type": "ended", "reason": "visitor-ended"}
    assert await closed_with(socket) == CloseCode.NORMAL


@database_sync_to_async
def load(call_id):
    call = Call.objects.get(pk=call_id)
    transcript = list(
        TranscriptMessage.objects.filter(call=call).values_list("role", "text", "final")
    )
    return call, transcript


def voicehub_call_id(sandbox):
    (call_id,) = sandbox.state.calls
    return call_id


# happy paths


async def test_ready_frame_reports_call_mode_and_no_audio_for_text(
    sandbox, agent, async_client, open_socket
):
    call_id, socket = await open_call(async_client, open_socket, agent, "text")
    ready = await next_json(socket)
    assert ready == {
        "type": "ready",
        "version": 1,
        "call": call_id,
        "mode": "text",
        "audio": None,
        "resume": None,  # RESUME_SECONDS is 0 here
        "resumed": False,
    }


async def test_ready_frame_of_an_audio_call_reports_the_audio_format(
    sandbox, agent, async_client, open_socket
):
    _, socket = await open_call(async_client, open_socket, agent, "TextAudio")
    ready = await next_json(socket)
    assert ready["audio"] == {
        "format": "pcm16le",
        "inputRate": 16000,
        "outputRate": 16000,
        "frameMs": 20,
    }


async def test_text_from_visitor_reaches_upstream_and_agent_reply_is_relayed(
    sandbox, agent, async_client, open_socket
):
    _, socket = await live_call(async_client, open_socket, agent)
    await socket.send_json_to({"type": "text", "text": "hello world"})
    echoed = await next_json(socket)
    assert echoed == {
        "type": "message",
        "id": "visitor-1",
        "role": "user",
        "text": "hello world",
        "final": True,
    }
    reply = await receive_until(socket, lambda f: f.get("final"))
    assert reply[-1]["text"] == "You said: hello world"
    assert [f["final"] for f in reply[:-1]] == [False] * (len(reply) - 1)
    assert len({f["id"] for f in reply}) == 1
    upstream_in = sandbox.state.events(voicehub_call_id(sandbox), "in")
    assert upstream_in[-1].event == "text.message"
    assert upstream_in[-1].data == {"callId": voicehub_call_id(sandbox), "text": "hello world"}


async def test_visitor_end_tells_the_browser_closes_1000_and_records_the_end(
    sandbox, agent, async_client, open_socket
):
    call_id, socket = await live_call(async_client, open_socket, agent)
    await hang_up(socket)
    call, _ = await load(call_id)
    assert call.status == CallStatus.ENDED
    assert call.end_reason == "visitor-ended"
    assert call.ended_at is not None and call.live_at is not None


async def test_visitor_end_leaves_the_channels_and_closes_the_upstream(
    sandbox, agent, async_client, open_socket
):
    _, socket = await live_call(async_client, open_socket, agent)
    await hang_up(socket)
    vh_call = voicehub_call_id(sandbox)
    await sandbox.state.await_for(lambda: sandbox.state.calls[vh_call].ended)
    events = [r.event for r in sandbox.state.events(vh_call, "in")]
    assert events[-1] == "channel.leave"
    assert sandbox.state.calls[vh_call].ended == "client-disconnected"


async def test_transcript_is_stored_in_order(sandbox, agent, async_client, open_socket):
    call_id, socket = await live_call(async_client, open_socket, agent)
    for text in ("one", "two"):
        await socket.send_json_to({"type": "text", "text": text})
        await receive_until(socket, lambda f: f.get("final") and f["role"] == "agent")
    await hang_up(socket)
    call, transcript = await load(call_id)
    assert [(role, text) for role, text, _ in transcript] == [
        ("agent", sandbox.app.config.greeting),
        ("user", "one"),
        ("agent", "You said: one"),
        ("user", "two"),
        ("agent", "You said: two"),
    ]
    assert all(final for _, _, final in transcript)
    assert (call.messages_from_visitor, call.messages_from_agent) == (2, 3)


async def test_text_call_never_joins_the_audio_channel(sandbox, agent, async_client, open_socket):
    await live_call(async_client, open_socket, agent, "text")
    (join,) = [r for r in sandbox.state.events(direction="in") if r.event == "channel.join"]
    assert join.data["channels"] == ["text"]


@pytest.mark.parametrize("mode", ["WebAudio", "TextAudio"])
async def test_audio_calls_join_audio_and_text(sandbox, agent, async_client, open_socket, mode):
    await live_call(async_client, open_socket, agent, mode)
    (join,) = [r for r in sandbox.state.events(direction="in") if r.event == "channel.join"]
    assert join.data["channels"] == ["audio", "text"]


async def test_agent_hang_up_ends_the_browser_socket_normally(
    sandbox, agent, async_client, open_socket
):
    call_id, socket = await live_call(async_client, open_socket, agent)
    await socket.send_json_to({"type": "text", "text": "bye"})
    frames = await receive_until(socket, lambda f: f["type"] == "ended")
    assert frames[-1] == {"type": "ended", "reason": "agent-hangup"}
    assert frames[-2]["text"] == "Goodbye!"
    assert await closed_with(socket) == CloseCode.NORMAL
    call, _ = await load(call_id)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "agent-hangup")


async def test_visitor_disconnect_leaves_upstream_and_records_the_end(
    sandbox, agent, async_client, open_socket
):
    call_id, socket = await live_call(async_client, open_socket, agent)
    await socket.disconnect()
    vh_call = voicehub_call_id(sandbox)
    await sandbox.state.await_for(lambda: sandbox.state.calls[vh_call].ended)
    assert [r.event for r in sandbox.state.events(vh_call, "in")][-1] == "channel.leave"
    call, _ = await load(call_id)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "visitor-disconnected")


async def test_ping_is_answered_with_pong(sandbox, agent, async_client, open_socket):
    _, socket = await live_call(async_client, open_socket, agent)
    await socket.send_json_to({"type": "ping", "t": 1234.5})
    assert await next_json(socket) == {"type": "pong", "t": 1234.5}


async def test_frames_sent_before_ready_reach_the_agent_after_the_join(
    sandbox, agent, async_client, open_socket
):
    _, socket = await open_call(async_client, open_socket, agent)
    await socket.send_json_to({"type": "text", "text": "early bird"})
    frames = await receive_until(socket, lambda f: f.get("text") == "You said: early bird")
    assert frames[0]["type"] == "ready"


async def test_typed_text_echoed_by_upstream_is_shown_and_stored_once(
    sandbox, agent, async_client, open_socket
):
    sandbox.faults.echo_user_text = True
    call_id, socket = await live_call(async_client, open_socket, agent)
    await socket.send_json_to({"type": "text", "text": "only once"})
    frames = await receive_until(socket, lambda f: f.get("final") and f["role"] == "agent")
    assert [f["text"] for f in frames if f["role"] == "user"] == ["only once"]
    await hang_up(socket)
    _, transcript = await load(call_id)
    assert [t for r, t, _ in transcript if r == "user"] == ["only once"]


# refused connections: accepted first, then closed with our code


async def test_forged_token_is_closed_with_4401(sandbox, open_socket):
    socket = open_socket("/ws/webcall/forged-token/")
    assert await refusal(socket) == ("bad_token", CloseCode.BAD_TOKEN)


async def test_expired_token_is_closed_with_4401(sandbox, agent, async_client, open_socket):
    response = await create_call(async_client, agent.slug)
    call_id = uuid.UUID(response.json()["call"])
    # Waiting out the real 60 s is too slow for a test: issue the token in the past.
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 120):
        old_token = tokens.issue(call_id)
    socket = open_socket(f"/ws/webcall/{old_token}/")
    await socket.connect(timeout=5)
    error = await next_json(socket)
    assert "expired" in error["message"]
    assert await closed_with(socket) == CloseCode.BAD_TOKEN


async def test_token_for_an_unknown_call_is_closed_with_4404(sandbox, open_socket, db):
    token = signing.dumps(uuid.uuid4().hex, salt=tokens.SALT)
    socket = open_socket(f"/ws/webcall/{token}/")
    assert await refusal(socket) == ("unknown_call", CloseCode.UNKNOWN_CALL)


async def test_second_connect_with_the_same_token_is_closed_with_4409(
    sandbox, agent, async_client, open_socket
):
    response = await create_call(async_client, agent.slug)
    first = open_socket(socket_path(response))
    await first.connect(timeout=5)
    assert (await next_json(first))["type"] == "ready"
    second = open_socket(socket_path(response))
    assert await refusal(second) == ("token_used", CloseCode.TOKEN_USED)


async def test_racing_connects_with_one_token_let_exactly_one_in(
    sandbox, agent, async_client, open_socket
):
    response = await create_call(async_client, agent.slug)
    sockets = [open_socket(socket_path(response)) for _ in range(5)]
    await asyncio.gather(*(s.connect(timeout=5) for s in sockets))
    first_frames = await asyncio.gather(*(next_json(s) for s in sockets))
    assert sorted(f.get("code", f["type"]) for f in first_frames) == [
        "ready",
        "token_used",
        "token_used",
        "token_used",
        "token_used",
    ]


async def test_origin_not_listed_on_the_agent_is_closed_with_4403(
    sandbox, agent, async_client, open_socket
):
    response = await create_call(async_client, agent.slug)
    socket = open_socket(socket_path(response), origin="https://evil.example")
    assert await refusal(socket) == ("origin_not_allowed", CloseCode.ORIGIN_NOT_ALLOWED)


async def test_refused_origin_does_not_use_up_the_token(sandbox, agent, async_client, open_socket):
    response = await create_call(async_client, agent.slug)
    refused = open_socket(socket_path(response), origin="https://evil.example")
    assert await refusal(refused) == ("origin_not_allowed", CloseCode.ORIGIN_NOT_ALLOWED)
    allowed = open_socket(socket_path(response))
    await allowed.connect(timeout=5)
    assert (await next_json(allowed))["type"] == "ready"


async def test_origin_listed_on_the_agent_is_accepted(
    sandbox, agent_factory, async_client, open_socket
):
    agent = await database_sync_to_async(agent_factory)(
        allowed_origins="https://shop.example\nhttps://*.partner.example"
    )
    response = await create_call(async_client, agent.slug, origin="https://shop.example")
    socket = open_socket(socket_path(response), origin="https://eu.partner.example")
    await socket.connect(timeout=5)
    assert (await next_json(socket))["type"] == "ready"


async def test_agent_disabled_after_the_call_was_created_is_closed_with_4503(
    sandbox, agent, async_client, open_socket
):
    response = await create_call(async_client, agent.slug)
    agent.is_active = False
    await database_sync_to_async(agent.save)()
    socket = open_socket(socket_path(response))
    assert await refusal(socket) == ("agent_disabled", CloseCode.AGENT_DISABLED)


# bad input from the browser


async def test_malformed_json_closes_4400_and_keeps_the_transcript(
    sandbox, agent, async_client, open_socket
):
    call_id, socket = await live_call(async_client, open_socket, agent)
    await socket.send_json_to({"type": "text", "text": "keep me"})
    await receive_until(socket, lambda f: f.get("final") and f["role"] == "agent")
    await socket.send_to(text_data="{not json")
    error = await next_json(socket)
    assert error["type"] == "error" and error["code"] == "malformed_frame"
    assert (await next_json(socket))["type"] == "ended"
    assert await closed_with(socket) == CloseCode.MALFORMED_FRAME
    call, transcript = await load(call_id)
    assert ("user", "keep me", True) in transcript
    assert call.error_code == "malformed_frame"


async def test_oversized_frame_closes_4413(sandbox, agent, async_client, open_socket, settings):
    settings.WEBCALL_WIDGET = {**settings.WEBCALL_WIDGET, "MAX_FRAME_BYTES": 1024}
    _, socket = await live_call(async_client, open_socket, agent)
    await socket.send_json_to({"type": "text", "text": "x" * 2000})
    assert (await next_json(socket))["code"] == "frame_too_large"
    assert await closed_with(socket) == CloseCode.FRAME_TOO_LARGE


async def test_too_long_message_is_refused_and_the_call_goes_on(
    sandbox, agent, async_client, open_socket, settings
):
    settings.WEBCALL_WIDGET = {**settings.WEBCALL_WIDGET, "MAX_TEXT_LENGTH": 10}
    _, socket = await live_call(async_client, open_socket, agent)
    await socket.send_json_to({"type": "text", "text": "x" * 11})
    assert (await next_json(socket))["code"] == "message_too_long"
    await socket.send_json_to({"type": "text", "text": "short"})
    frames = await receive_until(socket, lambda f: f.get("final") and f["role"] == "agent")
    assert frames[-1]["text"] == "You said: short"


async def test_text_in_a_voice_only_call_is_refused_and_the_call_goes_on(
    sandbox, agent, async_client, open_socket
):
    _, socket = await open_call(async_client, open_socket, agent, "WebAudio")
    assert (await next_json(socket))["type"] == "ready"
    await socket.send_json_to({"type": "text", "text": "hello"})
    frames = await receive_until(socket, lambda f: f["type"] == "error")
    assert frames[-1]["code"] == "text_not_allowed"
    await socket.send_json_to({"type": "ping", "t": 1})
    assert (await receive_until(socket, lambda f: f["type"] == "pong"))[-1]["t"] == 1


async def test_audio_in_a_text_call_is_refused(sandbox, agent, async_client, open_socket):
    _, socket = await live_call(async_client, open_socket, agent, "text")
    await socket.send_to(bytes_data=b"\x00\x00" * 160)
    assert (await next_json(socket))["code"] == "audio_not_allowed"


# upstream failures


async def test_upstream_drop_sends_error_then_closes_4502(
    sandbox, agent, async_client, open_socket
):
    sandbox.faults.drop_on_text = "drop now"
    call_id, socket = await live_call(async_client, open_socket, agent)
    await socket.send_json_to({"type": "text", "text": "drop now"})
    frames = await receive_until(socket, lambda f: f["type"] == "ended")
    error = next(f for f in frames if f["type"] == "error")
    assert error["code"] == "upstream_lost"
    assert "lost" in error["message"]
    assert await closed_with(socket) == CloseCode.UPSTREAM_FAILED
    call, transcript = await load(call_id)
    assert (call.status, call.error_code) == (CallStatus.FAILED, "upstream_lost")
    assert ("user", "drop now", True) in transcript


async def test_join_never_confirmed_closes_4502(
    sandbox, agent, async_client, open_socket, settings
):
    sandbox.faults.join_silent = True
    settings.WEBCALL_WIDGET = {"UPSTREAM": {"URL": sandbox.url, "JOIN_TIMEOUT": 0.3}}
    call_id, socket = await open_call(async_client, open_socket, agent)
    error = await next_json(socket)
    assert error["code"] == "upstream_join_timeout"
    assert await closed_with(socket) == CloseCode.UPSTREAM_FAILED
    call, _ = await load(call_id)
    assert call.status == CallStatus.FAILED and call.live_at is None


async def test_browser_frames_are_handled_while_upstream_is_silent(
    sandbox, agent, async_client, open_socket, settings
):
    sandbox.faults.join_silent = True
    settings.WEBCALL_WIDGET = {"UPSTREAM": {"URL": sandbox.url, "JOIN_TIMEOUT": 3}}
    _, socket = await open_call(async_client, open_socket, agent)
    await socket.send_json_to({"type": "ping", "t": 7})
    assert await next_json(socket, wait=1) == {"type": "pong", "t": 7}


async def test_unreachable_upstream_socket_closes_4502(sandbox, agent, async_client, open_socket):
    response = await create_call(async_client, agent.slug)
    await database_sync_to_async(Call.objects.filter(pk=response.json()["call"]).update)(
        upstream_url="http://127.0.0.1:9"
    )
    socket = open_socket(socket_path(response))
    await socket.connect(timeout=5)
    error = await next_json(socket)
    assert error["code"] == "upstream_failed"
    assert await closed_with(socket) == CloseCode.UPSTREAM_FAILED


async def test_end_while_still_connecting_ends_cleanly(
    sandbox, agent, async_client, open_socket, settings
):
    sandbox.faults.join_silent = True
    settings.WEBCALL_WIDGET = {"UPSTREAM": {"URL": sandbox.url, "JOIN_TIMEOUT": 5}}
    call_id, socket = await open_call(async_client, open_socket, agent)
    await hang_up(socket)
    call, _ = await load(call_id)
    assert call.status == CallStatus.ENDED


# hygiene


async def test_no_task_is_left_running_after_the_call(sandbox, agent, async_client, open_socket):
    before = asyncio.all_tasks()
    _, socket = await live_call(async_client, open_socket, agent)
    await socket.send_json_to({"type": "text", "text": "hi"})
    await receive_until(socket, lambda f: f.get("final") and f["role"] == "agent")
    await socket.disconnect()
    assert tasks_left(before) == []


def tasks_left(before: set[asyncio.Task]) -> list[asyncio.Task]:
    """Tasks started since ``before`` and still running, but this one and the process's own
    housekeeping (its lease and sweeper outlive every call)."""
    return [
        task
        for task in asyncio.all_tasks() - before
        if not task.done()
        and task is not asyncio.current_task()
        and task.get_name() != f"webcall-process-{current.id}"
    ]


async def test_api_key_appears_in_no_frame_and_no_log_record(
    sandbox, agent, async_client, open_socket, caplog
):
    caplog.set_level(logging.DEBUG)
    sandbox.faults.drop_on_text = "drop"
    response = await create_call(async_client, agent.slug)
    assert SANDBOX_API_KEY not in response.content.decode()
    socket = open_socket(socket_path(response))
    await socket.connect(timeout=5)
    frames = await receive_until(socket, lambda f: f.get("role") == "agent")
    await socket.send_json_to({"type": "text", "text": "drop"})
    frames += await receive_until(socket, lambda f: f["type"] == "ended")
    await closed_with(socket)
    assert all(SANDBOX_API_KEY not in str(frame) for frame in frames)
    assert all(SANDBOX_API_KEY not in record.getMessage() for record in caplog.records)


# audio


async def test_binary_audio_is_forwarded_unchanged_in_both_directions(
    sandbox, agent_factory, async_client, open_socket
):
    agent = await database_sync_to_async(agent_factory)(voicehub_agent_id="loopback-agent")
    call_id, socket = await open_call(async_client, open_socket, agent, "WebAudio")
    assert (await next_json(socket))["type"] == "ready"
    frames = [bytes([n]) * 640 for n in range(20)]
    for frame in frames:
        await socket.send_to(bytes_data=frame)
    echoed: list[bytes] = []
    while len(echoed) < len(frames):
        output = await socket.receive_output(timeout=5)
        if output.get("bytes") is not None:
            echoed.append(output["bytes"])
    assert echoed == frames
    await hang_up(socket)
    call, transcript = await load(call_id)
    assert (call.audio_bytes_in, call.audio_bytes_out) == (20 * 640, 20 * 640)
    assert [text for _, text, _ in transcript] == [sandbox.app.config.greeting]  # no audio rows


async def test_longer_browser_frames_reach_voicehub_in_its_own_and_come_back_whole(
    sandbox, agent_factory, async_client, open_socket, settings
):
    settings.WEBCALL_WIDGET = {**settings.WEBCALL_WIDGET, "AUDIO_FRAME_MS": 60}
    agent = await database_sync_to_async(agent_factory)(voicehub_agent_id="loopback-agent")
    call_id, socket = await open_call(async_client, open_socket, agent, "WebAudio")
    assert (await next_json(socket))["audio"]["frameMs"] == 60
    frames = [bytes(range(n, n + 20)) * 96 for n in range(10)]  # 60 ms at 16 kHz each
    for frame in frames:
        await socket.send_to(bytes_data=frame)
    echoed: list[bytes] = []
    while len(echoed) < len(frames):
        output = await socket.receive_output(timeout=5)
        if output.get("bytes") is not None:
            echoed.append(output["bytes"])
    assert echoed == frames
    assert sandbox.state.audio_in_sizes == {640}, "VoiceHub takes 20 ms frames"
    await hang_up_after_audio(socket)


async def test_voicehub_frame_length_is_its_own_setting(
    sandbox, agent_factory, async_client, open_socket, settings
):
    current = settings.WEBCALL_WIDGET
    settings.WEBCALL_WIDGET = {**current, "UPSTREAM": {**current["UPSTREAM"], "FRAME_MS": 40}}
    agent = await database_sync_to_async(agent_factory)(voicehub_agent_id="loopback-agent")
    _, socket = await open_call(async_client, open_socket, agent, "WebAudio")
    assert (await next_json(socket))["audio"]["frameMs"] == 20
    for _ in range(6):
        await socket.send_to(bytes_data=bytes(640))
    await sandbox.state.await_for(lambda: sum(sandbox.state.audio_in.values()) == 6 * 640)
    assert sandbox.state.audio_in_sizes == {1280}
    await hang_up_after_audio(socket)  # the agent's greeting may still be on its way


async def test_audio_sent_before_ready_reaches_the_agent(
    sandbox, agent_factory, async_client, open_socket
):
    agent = await database_sync_to_async(agent_factory)(voicehub_agent_id="loopback-agent")
    response = await create_call(async_client, agent.slug, "WebAudio")
    socket = open_socket(socket_path(response))
    await socket.connect(timeout=5)
    await socket.send_to(bytes_data=b"\x01\x02" * 320)
    while True:
        output = await socket.receive_output(timeout=5)
        if output.get("bytes") is not None:
            break
    assert output["bytes"] == b"\x01\x02" * 320


async def test_upstream_audio_clear_becomes_an_interrupt_frame(
    sandbox, agent, async_client, open_socket
):
    from webcall_widget.sandbox.audio import tone

    _, socket = await open_call(async_client, open_socket, agent, "WebAudio")
    assert (await next_json(socket))["type"] == "ready"
    speech = tone((300.0, 450.0), 0.02, 16000, level=0.2)
    for frame in [speech] * 100 + [bytes(640)] * 35:  # a 2 s utterance, then silence
        await socket.send_to(bytes_data=frame)
    await receive_until(socket, lambda f: f.get("text", "").startswith("Echoing"))
    for _ in range(15):  # talk over the echo
        await socket.send_to(bytes_data=speech)
    await receive_until(socket, lambda f: f["type"] == "interrupt", limit=500)


async def test_a_relay_cancelled_mid_call_leaves_upstream_and_records_the_end(
    sandbox, no_rejoin, agent, async_client, open_socket
):
    # An ASGI server stopping cancels its consumers; a receive that times out in a test
    # does the same. (The open_socket fixture must then tear down without CancelledError,
    # which pytest would let skip every later finalizer.)
    call_id, socket = await live_call(async_client, open_socket, agent)
    with pytest.raises(asyncio.TimeoutError):
        await socket.receive_output(timeout=0.2)
    assert socket.future.cancelled()
    await sandbox.state.await_for(lambda: sandbox.state.disconnections == 1)
    upstream_id = voicehub_call_id(sandbox)
    assert sandbox.state.events(upstream_id, "in")[-1].event == "channel.leave"
    for _ in range(50):  # the end is recorded just after the upstream is closed
        call, transcript = await load(call_id)
        if call.ended_at is not None:
            break
        await asyncio.sleep(0.1)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "relay-stopped")
    assert transcript == [("agent", transcript[0][1], True)]


# resuming a call: a reload, another page, a dropped connection


async def resumable_call(async_client, open_socket, agent, mode="text", *, application=None):
    """A live call (past the greeting where there is text): its id, socket and resume token."""
    call_id, socket = await open_call(
        async_client, open_socket, agent, mode, application=application
    )
    ready = await next_json(socket)
    assert ready["type"] == "ready" and ready["resume"]["seconds"] > 0, ready
    if mode != "WebAudio":
        assert (await next_json(socket))["role"] == "agent"
    return call_id, socket, ready["resume"]["token"]


def resume_path(token: str) -> str:
    return f"/ws/webcall/{token}/"


async def resume(open_socket, token, *, origin="http://testserver", application=None):
    """Open a socket with a resume token: the socket and its ``ready`` frame."""
    socket = open_socket(resume_path(token), origin=origin, application=application)
    connected, _ = await socket.connect(timeout=5)
    assert connected
    return socket, await next_json(socket)


@database_sync_to_async
def resume_counts(call_id):
    call = Call.objects.get(pk=call_id)
    return call.suspensions, call.resumes, call.suspended_seconds


async def test_a_socket_that_comes_back_gets_the_conversation_and_goes_on(
    sandbox, resumable, agent, async_client, open_socket
):
    call_id, socket, token = await resumable_call(async_client, open_socket, agent)
    await socket.send_json_to({"type": "text", "text": "one", "id": "w1"})
    await receive_until(socket, lambda f: f.get("final") and f["role"] == "agent")
    await socket.disconnect(code=1001)  # a reload
    back, ready = await resume(open_socket, token)
    assert (ready["type"], ready["call"], ready["resumed"]) == ("ready", call_id, True)
    assert ready["resume"]["token"] != token
    transcript = await next_json(back)
    assert [(m["role"], m["text"]) for m in transcript["messages"]] == [
        ("agent", sandbox.app.config.greeting),
        ("user", "one"),
        ("agent", "You said: one"),
    ]
    assert transcript["messages"][1]["id"] == "w1"
    await back.send_json_to({"type": "text", "text": "two"})
    frames = await receive_until(back, lambda f: f.get("final") and f["role"] == "agent")
    assert frames[-1]["text"] == "You said: two"
    await hang_up(back)
    call, stored = await load(call_id)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "visitor-ended")
    assert [text for _, text, _ in stored][-2:] == ["two", "You said: two"]
    suspensions, resumes, seconds = await resume_counts(call_id)
    assert (suspensions, resumes) == (1, 1) and 0 < seconds < 5


async def test_the_upstream_is_kept_while_the_visitor_is_away(
    sandbox, resumable, agent, async_client, open_socket
):
    call_id, socket, _ = await resumable_call(async_client, open_socket, agent)
    await socket.disconnect(code=1006)
    await asyncio.sleep(0.5)
    vh_call = voicehub_call_id(sandbox)
    assert sandbox.state.calls[vh_call].ended is None
    assert "channel.leave" not in [r.event for r in sandbox.state.events(vh_call, "in")]
    call, _ = await load(call_id)
    assert call.status == CallStatus.LIVE  # it holds its line meanwhile


async def test_a_call_nobody_comes_back_to_ends_after_the_grace_period(
    sandbox, resumable, agent, async_client, open_socket
):
    resumable(1)
    call_id, socket, _ = await resumable_call(async_client, open_socket, agent)
    await socket.disconnect(code=1006)
    vh_call = voicehub_call_id(sandbox)
    await sandbox.state.await_for(lambda: sandbox.state.calls[vh_call].ended)
    for _ in range(50):
        call, _ = await load(call_id)
        if call.ended_at is not None:
            break
        await asyncio.sleep(0.05)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "visitor-disconnected")
    # Not before the grace period (its exact length is tested on virtual time, test_bridge.py).
    assert call.suspensions == 1 and call.suspended_seconds >= 0.99


async def test_a_resume_token_works_once(resumable, agent, async_client, open_socket):
    _, socket, token = await resumable_call(async_client, open_socket, agent)
    await socket.disconnect()
    back, ready = await resume(open_socket, token)
    assert ready["resumed"] is True
    await back.disconnect()
    again = open_socket(resume_path(token))
    assert await refusal(again) == ("token_used", CloseCode.TOKEN_USED)


async def test_a_resume_token_from_another_origin_is_refused_and_stays_usable(
    resumable, agent_factory, async_client, open_socket
):
    agent = await database_sync_to_async(agent_factory)(allowed_origins="https://shop.example")
    _, socket, token = await resumable_call(async_client, open_socket, agent)
    await socket.disconnect()
    elsewhere = open_socket(resume_path(token), origin="https://shop.example")
    assert await refusal(elsewhere) == ("origin_not_allowed", CloseCode.ORIGIN_NOT_ALLOWED)
    _, ready = await resume(open_socket, token)
    assert ready["resumed"] is True


async def test_an_expired_resume_token_is_refused_with_4401(
    resumable, agent, async_client, open_socket
):
    call_id, socket, _ = await resumable_call(async_client, open_socket, agent)
    await socket.disconnect()
    grant = tokens.Grant(uuid.UUID(call_id), "http://testserver", 0)
    old = grant.token(20, now=time.time() - 20 - tokens.RESUME_SLACK_SECONDS - 1)
    socket = open_socket(resume_path(old))
    await socket.connect(timeout=5)
    error = await next_json(socket)
    assert (error["code"], "expired" in error["message"]) == ("bad_token", True)
    assert await closed_with(socket) == CloseCode.BAD_TOKEN


async def test_a_forged_resume_token_is_refused_with_4401(
    resumable, agent, async_client, open_socket
):
    _, socket, token = await resumable_call(async_client, open_socket, agent)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert await refusal(open_socket(resume_path(forged))) == ("bad_token", CloseCode.BAD_TOKEN)


async def test_a_second_socket_takes_the_call_over_and_the_first_is_closed_with_4410(
    resumable, agent, async_client, open_socket
):
    _, first, token = await resumable_call(async_client, open_socket, agent)
    second, ready = await resume(open_socket, token)  # a second tab, the first still open
    assert ready["resumed"] is True
    error = await next_json(first)
    assert error["code"] == "taken_over"
    assert await closed_with(first) == CloseCode.TAKEN_OVER
    await next_json(second)  # the transcript
    await second.send_json_to({"type": "text", "text": "from the second tab"})
    frames = await receive_until(second, lambda f: f.get("final") and f["role"] == "agent")
    assert frames[-1]["text"] == "You said: from the second tab"
    await hang_up(second)


async def test_resuming_a_call_that_ended_shows_how_it_ended(
    sandbox, resumable, agent, async_client, open_socket
):
    resumable(1)
    call_id, socket, token = await resumable_call(async_client, open_socket, agent)
    await socket.send_json_to({"type": "text", "text": "are you there?"})
    await receive_until(socket, lambda f: f.get("final") and f["role"] == "agent")
    await socket.disconnect()
    for _ in range(100):  # the grace period passes
        call, _ = await load(call_id)
        if call.ended_at is not None:
            break
        await asyncio.sleep(0.05)
    late = open_socket(resume_path(token))
    await late.connect(timeout=5)
    transcript = await next_json(late)
    assert [m["text"] for m in transcript["messages"]][-1] == "You said: are you there?"
    assert (await next_json(late))["code"] == "call_over"
    assert await next_json(late) == {"type": "ended", "reason": "visitor-disconnected"}
    assert await closed_with(late) == CloseCode.NORMAL


async def test_a_call_waiting_for_its_visitor_holds_its_line(
    resumable, agent_factory, async_client, open_socket
):
    agent = await database_sync_to_async(agent_factory)(max_concurrent_calls=1)
    _, socket, _ = await resumable_call(async_client, open_socket, agent)
    await socket.disconnect()
    response = await create_call(async_client, agent.slug)
    assert (response.status_code, response.json()["error"]["code"]) == (429, "agent_busy")


async def test_an_agent_can_turn_resuming_off(resumable, agent_factory, async_client, open_socket):
    agent = await database_sync_to_async(agent_factory)(resume_seconds=0)
    call_id, socket = await live_call(async_client, open_socket, agent)
    await socket.disconnect()
    call, _ = await load(call_id)
    assert (call.end_reason, call.suspensions) == ("visitor-disconnected", 0)


async def test_a_resumed_voice_call_joins_the_audio_channel_again(
    sandbox, resumable, agent_factory, async_client, open_socket
):
    agent = await database_sync_to_async(agent_factory)(voicehub_agent_id="loopback-agent")
    _, socket, token = await resumable_call(async_client, open_socket, agent, "WebAudio")
    await socket.disconnect(code=1001)
    vh_call = voicehub_call_id(sandbox)
    await sandbox.state.await_for(lambda: sandbox.state.calls[vh_call].joined == ("text",))
    back, ready = await resume(open_socket, token)
    assert ready["resumed"] is True
    assert (await next_json(back))["type"] == "transcript"
    frames = [bytes([n]) * 640 for n in range(5)]
    for frame in frames:
        await back.send_to(bytes_data=frame)
    echoed: list[bytes] = []
    while len(echoed) < len(frames):
        output = await back.receive_output(timeout=5)
        if output.get("bytes") is not None:
            echoed.append(output["bytes"])
    assert echoed == frames
    joins = [
        r.data["channels"]
        for r in sandbox.state.events(vh_call, "in")
        if r.event == "channel.join"
    ]
    assert joins == [["audio", "text"], ["audio"]]
    await hang_up(back)


async def test_a_resume_reaching_a_process_without_the_call_is_forwarded_to_its_holder(
    sandbox, resumable, agent_factory, async_client, open_socket
):
    """This process holds the call, and the visitor comes back through another one: it
    asks the call's group, and frames go both ways through the (in-memory) channel layer,
    as they do through Redis between processes (tests/test_multiprocess.py)."""
    agent = await database_sync_to_async(agent_factory)(voicehub_agent_id="loopback-agent")
    call_id, socket, token = await resumable_call(async_client, open_socket, agent, "TextAudio")
    await socket.disconnect(code=1001)
    back, ready = await resume(open_socket, token, application=another_process())
    assert ready["resumed"] is True
    assert (await next_json(back))["type"] == "transcript"
    await back.send_json_to({"type": "text", "text": "via the layer", "id": "w9"})
    frames = await receive_until(back, lambda f: f.get("text") == "You said: via the layer")
    assert frames[0]["id"] == "w9"
    await back.send_to(bytes_data=b"\x05\x00" * 320)
    while (output := await back.receive_output(timeout=5)).get("bytes") is None:
        pass
    assert output["bytes"] == b"\x05\x00" * 320
    await hang_up(back)
    call, _ = await load(call_id)
    assert (call.end_reason, call.resumes) == ("visitor-ended", 1)


class ForwardingSocket(consumer.RelayConsumer):
    """The resumed socket's consumer on "the other process", kept for the test to read."""

    seen: list[consumer.RelayConsumer] = []

    async def __call__(self, scope, receive, send):
        ForwardingSocket.seen.append(self)
        await super().__call__(scope, receive, send)


def slow_network(application, gate: asyncio.Event):
    """``application``, with its audio writes held back until ``gate`` opens."""

    async def held_back(scope, receive, send):
        async def send_when_open(message):
            if message.get("bytes") is not None:
                await gate.wait()
            await send(message)

        await application(scope, receive, send_when_open)

    return held_back


async def test_agent_audio_a_forwarded_socket_drops_is_counted_by_the_call_and_told(
    sandbox, resumable, agent_factory, async_client, open_socket
):
    """A visitor resumed through another process, on a connection slower than the agent's
    audio: that socket drops the oldest audio, and the process holding the call counts it
    and tells the visitor, as for a socket of its own. The test socket never makes a write
    wait, so the socket's audio writes are held back by a gate: a browser that really stops
    reading needs a real server (tests/test_backpressure_live.py)."""
    agent = await database_sync_to_async(agent_factory)(voicehub_agent_id="loopback-agent")
    call_id, socket, token = await resumable_call(async_client, open_socket, agent, "WebAudio")
    await socket.disconnect(code=1001)
    holder = lifecycle.registry.find(uuid.UUID(call_id))
    assert isinstance(holder, Bridge)
    gate = asyncio.Event()
    ForwardingSocket.seen = []
    other = another_process(ForwardingSocket, max_queued_audio_seconds=0.05)  # 1,600 bytes
    back, ready = await resume(open_socket, token, application=slow_network(other, gate))
    assert ready["resumed"] is True
    [forwarding] = ForwardingSocket.seen
    counters = holder.counters
    forwarded_before = counters.audio_bytes_out + counters.audio_bytes_dropped_out
    for n in range(20):
        await back.send_to(bytes_data=bytes([n + 1]) * 640)

    def forwarded() -> int:
        return counters.audio_bytes_out + counters.audio_bytes_dropped_out - forwarded_before

    async with asyncio.timeout(5):  # every echo relayed, every drop heard of by the holder
        while (  # noqa: ASYNC110
            forwarded() < 20 * 640
            or counters.audio_bytes_dropped_out < forwarding._outbox.dropped_bytes
            or not forwarding._outbox.dropped_bytes
        ):
            await asyncio.sleep(0.01)
    gate.set()
    heard = 0
    texts: list[dict] = []
    await back.send_json_to({"type": "end"})
    while not texts or texts[-1].get("type") != "ended":
        output = await back.receive_output(timeout=5)
        if output.get("bytes") is not None:
            heard += len(output["bytes"])
        elif output.get("text") is not None:
            texts.append(json.loads(output["text"]))
    assert [t["code"] for t in texts if t["type"] == "error"] == ["connection_slow"]
    call, _ = await load(call_id)
    assert call.audio_bytes_dropped_out == forwarding._outbox.dropped_bytes == forwarded() - heard


async def gone_silent(call_id: str) -> Bridge:
    """The process holding the call stops answering, as a killed one would: its bridge
    lets go of the call without a word to VoiceHub or the database."""
    holder = lifecycle.registry.find(uuid.UUID(call_id))
    assert isinstance(holder, Bridge)
    await holder.let_go()
    return holder


async def test_a_call_whose_process_went_silent_is_taken_over_and_goes_on(
    sandbox, resumable, agent, async_client, open_socket
):
    call_id, socket, token = await resumable_call(async_client, open_socket, agent)
    await socket.send_json_to({"type": "text", "text": "before", "id": "w1"})
    await receive_until(socket, lambda f: f.get("text") == "You said: before")
    await socket.disconnect(code=1006)
    await gone_silent(call_id)
    other = RelayProcess()
    back, ready = await resume(
        open_socket, token, application=relay_app(process=other, attach_timeout=0.2)
    )
    assert ready["resumed"] is True
    replay = await next_json(back)
    assert [m["text"] for m in replay["messages"]][-2:] == ["before", "You said: before"]
    await back.send_json_to({"type": "text", "text": "after", "id": "w2"})
    await receive_until(back, lambda f: f.get("text") == "You said: after")
    await hang_up(back)
    call, transcript = await load(call_id)
    assert (call.end_reason, call.owner) == ("visitor-ended", other.id)
    texts = [text for _, text, final in transcript if final]
    assert texts.count("You said: before") == 1 and texts[-1] == "You said: after"


async def test_a_call_whose_process_went_silent_ends_lost_where_voicehub_refuses_rejoins(
    sandbox, resumable, settings, agent, async_client, open_socket
):
    upstream = {**settings.WEBCALL_WIDGET["UPSTREAM"], "REJOIN": "never"}
    settings.WEBCALL_WIDGET = {**settings.WEBCALL_WIDGET, "UPSTREAM": upstream}
    call_id, socket, token = await resumable_call(async_client, open_socket, agent)
    await socket.disconnect(code=1001)
    await gone_silent(call_id)
    late = open_socket(resume_path(token), application=another_process(attach_timeout=0.2))
    await late.connect(timeout=5)
    assert (await next_json(late))["type"] == "transcript"
    assert (await next_json(late))["code"] == "resume_failed"
    assert await next_json(late) == {"type": "ended", "reason": "relay-lost"}
    assert await closed_with(late) == CloseCode.NORMAL
    call, _ = await load(call_id)
    assert (call.status, call.end_reason) == (CallStatus.FAILED, "relay-lost")
