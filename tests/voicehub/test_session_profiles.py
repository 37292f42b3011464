"""The upstream session under non-default profiles, against the sandbox's variants over
real sockets."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from webcall_widget.sandbox.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY
from webcall_widget.sandbox.variants import variant_profile
from webcall_widget.voicehub.address import ConnectContext
from webcall_widget.voicehub.client import create_web_call
from webcall_widget.voicehub.errors import UpstreamClosed, UpstreamConnectFailed, UpstreamHungUp
from webcall_widget.voicehub.events import CallEnded, Joined, Message, Mode, UpstreamEvent
from webcall_widget.voicehub.opening import open_session
from webcall_widget.voicehub.profile import (
    ConnectTemplate,
    JoinConfirmation,
    SocketPathAs,
    UpstreamProfile,
)
from webcall_widget.voicehub.secret import Secret


async def start(sandbox, profile: UpstreamProfile, mode=Mode.TEXT):
    created = await asyncio.to_thread(
        create_web_call,
        sandbox.url,
        api_key=SANDBOX_API_KEY,
        agent_id=SANDBOX_AGENT_ID,
        mode=mode,
        timeout=5,
    )
    context = ConnectContext(created.call_id, SANDBOX_AGENT_ID, Secret(SANDBOX_API_KEY))
    session = await open_session(
        base_url=sandbox.url,
        socket_path=created.socket_path,
        connect_timeout=3,
        profile=profile,
        context=context,
    )
    return created.call_id, session


async def opening_fails(sandbox, profile: UpstreamProfile) -> str:
    with pytest.raises(UpstreamConnectFailed) as failed:
        await start(sandbox, profile)
    return str(failed.value)


async def test_a_namespace_is_joined_on_the_socketio_path(variant_sandbox):
    sandbox = variant_sandbox("namespace")
    call_id, session = await start(sandbox, variant_profile("namespace"))
    try:
        await session.join(call_id, ("text",))
        assert await session.recv() == Joined(("text",))
        assert isinstance(await session.recv(), Message)
    finally:
        await session.close()


async def test_auto_finds_the_namespace_after_trying_a_path(variant_sandbox, caplog):
    sandbox = variant_sandbox("namespace")
    auto = dataclasses.replace(UpstreamProfile(), socket_path_as=SocketPathAs.AUTO)
    with caplog.at_level(logging.INFO, logger="webcall_widget.voicehub.opening"):
        call_id, session = await start(sandbox, auto)
    try:
        await session.join(call_id, ("text",))
        assert await session.recv() == Joined(("text",))
    finally:
        await session.close()
    assert "worked as a Socket.IO namespace" in caplog.text


async def test_a_namespace_taken_for_a_path_says_to_set_socket_path_as(variant_sandbox):
    sandbox = variant_sandbox("namespace")
    message = await opening_fails(sandbox, UpstreamProfile())
    assert "as a Socket.IO path" in message
    assert "set UPSTREAM.SOCKET_PATH_AS to 'namespace' (or 'auto')" in message
    assert "webcall_probe" in message


async def test_a_refused_connect_says_it_may_want_connect_auth(variant_sandbox):
    sandbox = variant_sandbox("auth-call-id")
    message = await opening_fails(sandbox, UpstreamProfile())
    assert "Socket.IO CONNECT answered: unauthorized" in message
    assert "it may want CONNECT_AUTH" in message


async def test_the_key_in_a_template_reaches_voicehub_but_no_message(variant_sandbox):
    sandbox = variant_sandbox("auth-key-headers")
    wrong = dataclasses.replace(
        UpstreamProfile(), connect=ConnectTemplate(query={"key": "{apiKey}"})
    )
    message = await opening_fails(sandbox, wrong)
    assert "key={apiKey}" in message
    assert SANDBOX_API_KEY not in message
    call_id, session = await start(sandbox, variant_profile("auth-key-headers"))
    await session.close()


async def test_a_join_acknowledgement_is_the_joined_event(variant_sandbox):
    sandbox = variant_sandbox("join-ack")
    call_id, session = await start(sandbox, variant_profile("join-ack"))
    try:
        await session.join(call_id, ("text",))
        assert await session.recv() == Joined(("text",))
    finally:
        await session.close()


async def test_a_refusing_join_acknowledgement_is_an_error(variant_sandbox):
    sandbox = variant_sandbox("join-ack")
    call_id, session = await start(sandbox, variant_profile("join-ack"))
    try:
        await session.join(call_id, ("audio", "text"))  # a text call may not join audio
        event = await session.recv()
        assert "may not join the audio channel" in event.message
    finally:
        await session.close()


async def test_a_join_nobody_confirms_is_taken_as_done(variant_sandbox):
    sandbox = variant_sandbox("join-ack")
    unconfirmed = dataclasses.replace(UpstreamProfile(), join_confirmation=JoinConfirmation.NONE)
    call_id, session = await start(sandbox, unconfirmed)
    try:
        await session.join(call_id, ("text",))
        assert await session.recv() == Joined(("text",))
        assert isinstance(await session.recv(), Message)  # the greeting
    finally:
        await session.close()


async def test_a_hang_up_by_disconnect_is_the_end_of_the_call(variant_sandbox):
    sandbox = variant_sandbox("end-by-disconnect")
    call_id, session = await start(sandbox, variant_profile("end-by-disconnect"))
    try:
        await session.join(call_id, ("text",))
        await session.send_text(call_id, "bye")
        events: list[UpstreamEvent] = []
        while not isinstance(events[-1:] and events[-1], CallEnded):
            events.append(await session.recv())
        assert events[-1] == CallEnded("upstream-ended")
        with pytest.raises(UpstreamClosed):
            await session.recv()
    finally:
        await session.close()


async def test_a_hang_up_by_disconnect_is_a_lost_socket_when_calls_end_by_event(
    variant_sandbox,
):
    sandbox = variant_sandbox("end-by-disconnect")
    call_id, session = await start(sandbox, UpstreamProfile())
    try:
        await session.join(call_id, ("text",))
        await session.send_text(call_id, "bye")
        with pytest.raises(UpstreamHungUp):
            while True:
                await session.recv()
    finally:
        await session.close()


async def test_events_the_profile_does_not_use_are_counted_not_returned(variant_sandbox):
    sandbox = variant_sandbox("default")
    sandbox.faults.flood_on_text = "flood"
    call_id, session = await start(sandbox, UpstreamProfile())
    try:
        await session.join(call_id, ("text",))
        await session.send_text(call_id, "flood")
        received: list[UpstreamEvent] = []
        while not (
            isinstance(last := received[-1] if received else None, Message)
            and last.final
            and "flood" in last.text
        ):
            received.append(await session.recv())
        assert session.report.unknown_events == 20
        assert session.report.bad_payloads == 1
        assert {type(e).__name__ for e in received} <= {"Joined", "Message", "UpstreamError"}
    finally:
        await session.close()
