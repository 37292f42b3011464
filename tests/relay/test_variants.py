"""Every protocol variant of the sandbox works through the relay with settings only: the
relay's ``UPSTREAM`` settings are the variant's (sandbox/variants.py), nothing else."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from tests.relay.round_trips import text_round_trip, voice_round_trip
from tests.relay.test_consumer import closed_with, next_json, receive_until
from webcall_widget.models import Call, CallStatus, TranscriptMessage
from webcall_widget.relay.protocol import CloseCode
from webcall_widget.sandbox.variants import VARIANTS, variant_profile

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def transcript(call_id):
    return list(
        TranscriptMessage.objects.filter(call_id=call_id).values_list("role", "text", "final")
    )


@database_sync_to_async
def load(call_id):
    return Call.objects.get(pk=call_id)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
async def test_text_round_trip_with_the_variants_settings(
    variant, variant_sandbox, agent, async_client, open_socket
):
    sandbox = variant_sandbox(variant)
    call_id = await text_round_trip(async_client, open_socket, agent)
    assert await transcript(call_id) == [
        ("agent", sandbox.app.config.greeting, True),
        ("user", "hello over there", True),
        ("agent", "You said: hello over there", True),
    ]
    call = await load(call_id)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "visitor-ended")
    assert (call.upstream_unknown_events, call.upstream_bad_payloads) == (0, 0)
    assert call.upstream_notes == ""


@pytest.mark.parametrize("variant", sorted(VARIANTS))
async def test_voice_round_trip_with_the_variants_settings(
    variant, variant_sandbox, agent, async_client, open_socket
):
    sandbox = variant_sandbox(variant)
    rate = variant_profile(variant).audio_out.rate
    heard = await voice_round_trip(async_client, open_socket, agent, rate)
    assert heard >= 0.95 * rate * 2  # a second of echo at the agent's own rate
    (vh_call,) = sandbox.state.calls
    assert sandbox.state.audio_in[vh_call] >= 16000 * 2  # the visitor's second got there


@pytest.mark.parametrize("variant", ["end-by-disconnect", "everything"])
async def test_an_agent_that_hangs_up_by_disconnecting_ends_the_call_normally(
    variant, variant_sandbox, agent, async_client, open_socket
):
    variant_sandbox(variant)
    from tests.relay.round_trips import live

    call_id, socket = await live(async_client, open_socket, agent, "text")
    await socket.send_json_to({"type": "text", "text": "bye"})
    frames = await receive_until(socket, lambda f: f["type"] in ("ended", "error"))
    assert frames[-1] == {"type": "ended", "reason": "upstream-ended"}
    assert frames[-2]["text"] == "Goodbye!"
    assert await closed_with(socket) == CloseCode.NORMAL
    call = await load(call_id)
    assert (call.status, call.end_reason, call.error_code) == (
        CallStatus.ENDED,
        "upstream-ended",
        "",
    )


async def test_the_same_disconnect_is_a_lost_upstream_when_calls_end_by_event(
    variant_sandbox, agent, async_client, open_socket
):
    """With the default CALL_END ("event"), a socket closed without call.ended failed."""
    variant_sandbox("end-by-disconnect", upstream={})
    from tests.relay.round_trips import live

    call_id, socket = await live(async_client, open_socket, agent, "text")
    await socket.send_json_to({"type": "text", "text": "bye"})
    frames = await receive_until(socket, lambda f: f["type"] == "ended")
    assert frames[-1]["reason"] == "upstream-lost"
    assert await closed_with(socket) == CloseCode.UPSTREAM_FAILED
    call = await load(call_id)
    assert (call.status, call.end_reason) == (CallStatus.FAILED, "upstream-lost")


async def test_a_visitor_role_not_in_visitor_roles_is_shown_as_the_agent(
    variant_sandbox, agent, async_client, open_socket
):
    """Why VISITOR_ROLES matters: without it, "customer" turns are agent bubbles."""
    variant_sandbox(
        "message-fields", upstream={"MESSAGE_FIELDS": VARIANTS["message-fields"]["MESSAGE_FIELDS"]}
    )
    from tests.relay.round_trips import live

    _, socket = await live(async_client, open_socket, agent, "TextAudio")
    from webcall_widget.probe.speech import frames as chunks
    from webcall_widget.probe.speech import silence, speech_like

    for chunk in chunks(speech_like(1.0, 16000) + silence(0.8, 16000), 16000):
        await socket.send_to(bytes_data=chunk)
    turn = await receive_until(socket, lambda f: f["type"] == "message" and "speech" in f["text"])
    assert turn[-1]["role"] == "agent"
    assert (await next_json(socket))["text"].startswith("Echoing")
