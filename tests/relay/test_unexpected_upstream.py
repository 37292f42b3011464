"""An upstream the relay does not fully understand: it says so in the log (rate-limited,
payload shapes only, no secrets) and on the Call, and the visitor is not flooded."""

from __future__ import annotations

import logging

import pytest
from channels.db import database_sync_to_async

from tests.relay.round_trips import hang_up_after_audio, live, voice_round_trip
from tests.relay.test_consumer import hang_up, receive_until
from webcall_widget.models import Call
from webcall_widget.sandbox.config import SANDBOX_API_KEY

pytestmark = pytest.mark.django_db(transaction=True)

FLOOD = "please misbehave"


@database_sync_to_async
def load(call_id):
    return Call.objects.get(pk=call_id)


@pytest.fixture
def flooding(variant_sandbox):
    sandbox = variant_sandbox("default")
    sandbox.faults.flood_on_text = FLOOD
    return sandbox


async def flood(async_client, open_socket, agent):
    """A call whose upstream sends 60 errors, 20 unknown events and an unreadable message
    at once, then answers; every frame the visitor got until the answer."""
    call_id, socket = await live(async_client, open_socket, agent, "text")
    await socket.send_json_to({"type": "text", "text": FLOOD})
    frames = await receive_until(
        socket, lambda f: f.get("text") == f"You said: {FLOOD}" and f["final"], limit=200
    )
    return call_id, socket, frames


async def test_a_burst_of_upstream_errors_reaches_the_visitor_once(
    flooding, agent, async_client, open_socket
):
    _, socket, frames = await flood(async_client, open_socket, agent)
    errors = [f for f in frames if f["type"] == "error"]
    assert len(errors) == 1
    assert errors[0]["code"] == "upstream_error"
    await hang_up(socket)


async def test_unknown_and_unreadable_events_are_counted_on_the_call(
    flooding, agent, async_client, open_socket
):
    call_id, socket, _ = await flood(async_client, open_socket, agent)
    await hang_up(socket)
    call = await load(call_id)
    assert call.upstream_unknown_events == 20
    assert call.upstream_bad_payloads == 1
    assert "debug.trace (20)" in call.upstream_notes
    assert "59 upstream error event(s) not passed on" in call.upstream_notes


async def test_unknown_events_are_logged_a_few_times_with_their_shape_and_no_secret(
    flooding, agent, async_client, open_socket, caplog
):
    with caplog.at_level(logging.WARNING, logger="webcall_widget.voicehub"):
        _, socket, _ = await flood(async_client, open_socket, agent)
        await hang_up(socket)
    lines = [r.getMessage() for r in caplog.records if "debug.trace" in r.getMessage()]
    assert 1 <= len(lines) <= 3
    assert "{seq: int, apiKey: [redacted], note: 'key [redacted] used'}" in lines[0]
    assert all(SANDBOX_API_KEY not in line for line in lines)
    held_errors = [r for r in caplog.records if "not passed on to the visitor" in r.getMessage()]
    assert 1 <= len(held_errors) <= 3


async def test_an_unreadable_message_is_logged_with_the_setting_to_check(
    flooding, agent, async_client, open_socket, caplog
):
    with caplog.at_level(logging.WARNING, logger="webcall_widget.voicehub"):
        _, socket, _ = await flood(async_client, open_socket, agent)
        await hang_up(socket)
    (line,) = [r.getMessage() for r in caplog.records if "could not read event" in r.getMessage()]
    assert "no text in field 'text' (UPSTREAM.MESSAGE_FIELDS)" in line
    assert "{callId: " in line and "unexpected: bool}" in line


async def test_agent_audio_faster_than_the_setting_marks_the_call_and_warns(
    variant_sandbox, agent, async_client, open_socket, caplog
):
    """24 kHz agent audio while OUTPUT_SAMPLE_RATE says 16 kHz (it would play 1.5x slow)."""
    variant_sandbox("output-24k", upstream={})
    with caplog.at_level(logging.WARNING, logger="webcall_widget.voicehub"):
        heard = await voice_round_trip(async_client, open_socket, agent, rate=24000, seconds=2)
    assert heard >= 0.95 * 2 * 48000
    (call,) = await database_sync_to_async(list)(Call.objects.all())
    assert "output sample rate looks like 24000 Hz" in call.upstream_notes
    assert "UPSTREAM.OUTPUT_SAMPLE_RATE is 16000" in call.upstream_notes
    assert any("looks like 24000 Hz" in r.getMessage() for r in caplog.records)


async def test_agent_audio_at_the_set_rate_leaves_no_note(
    variant_sandbox, agent, async_client, open_socket
):
    variant_sandbox("output-24k")
    await voice_round_trip(async_client, open_socket, agent, rate=24000)
    (call,) = await database_sync_to_async(list)(Call.objects.all())
    assert call.upstream_notes == ""


async def test_agent_audio_in_another_shape_is_counted_and_says_which_setting(
    variant_sandbox, agent, async_client, open_socket, caplog
):
    """base64 audio while AUDIO_OUT_FORMAT says binary: nothing plays, but it is visible."""
    variant_sandbox("audio-base64", upstream={})
    with caplog.at_level(logging.WARNING, logger="webcall_widget.voicehub"):
        call_id, socket = await live(async_client, open_socket, agent, "TextAudio")
        await caplog_wait(caplog, "AUDIO_OUT_FORMAT")
        await hang_up_after_audio(socket)
    call = await load(call_id)
    assert call.upstream_bad_payloads > 0
    assert call.audio_bytes_out == 0
    line = next(r.getMessage() for r in caplog.records if "AUDIO_OUT_FORMAT" in r.getMessage())
    assert "expected binary audio; got {callId: " in line and "audio: base64(" in line


async def caplog_wait(caplog, text, seconds=5.0):
    import asyncio

    for _ in range(int(seconds / 0.05)):
        if any(text in r.getMessage() for r in caplog.records):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no log line with {text!r}")
