"""``UpstreamSession.join_confirmed``: a join VoiceHub confirms, and a join of a call under
way (the call moving to a new socket) that it refuses, told apart by its type."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import RunningSandbox
from tests.sandbox.test_rejoin import create, socket_for
from tests.servers import ServerThread
from webcall_widget.sandbox import Sandbox
from webcall_widget.sandbox.config import SandboxConfig
from webcall_widget.voicehub.errors import (
    UpstreamConnectFailed,
    UpstreamJoinTimeout,
    UpstreamRejoinRefused,
)
from webcall_widget.voicehub.events import Message, Mode
from webcall_widget.voicehub.profile_settings import build_profile


async def lost_call(sandbox, profile=None):
    """A call joined from a socket that was then dropped, and its creation."""
    created = await create(sandbox)
    first = await socket_for(sandbox, created, profile)
    await first.join(created.call_id, ("text",))
    await first.recv()
    await first.abort()
    call = sandbox.state.calls[created.call_id]
    await sandbox.state.await_for(lambda: call.lost_at is not None)
    return created


async def test_a_join_returns_once_confirmed(variant_sandbox):
    sandbox = variant_sandbox("default")
    created = await create(sandbox)
    session = await socket_for(sandbox, created)
    try:
        assert await session.join_confirmed(created.call_id, ("text",), seconds=5) == []
        assert isinstance(await session.recv(), Message)  # the greeting, after
    finally:
        await session.close()


async def test_a_first_join_answered_with_an_error_failed_to_connect(variant_sandbox):
    sandbox = variant_sandbox("default")
    created = await create(sandbox, Mode.TEXT)
    session = await socket_for(sandbox, created)
    try:
        with pytest.raises(UpstreamConnectFailed, match="may not join the audio channel"):
            await session.join_confirmed(created.call_id, ("audio", "text"), seconds=5)
    finally:
        await session.close()


async def test_a_join_nobody_confirms_times_out(variant_sandbox):
    sandbox = variant_sandbox("default")
    sandbox.faults.join_silent = True
    created = await create(sandbox)
    session = await socket_for(sandbox, created)
    try:
        with pytest.raises(UpstreamJoinTimeout, match=r"channel.join not confirmed within 0.3s"):
            await session.join_confirmed(created.call_id, ("text",), seconds=0.3)
    finally:
        await session.close()


async def test_a_refused_rejoin_is_its_own_error(variant_sandbox):
    sandbox = variant_sandbox("no-rejoin")
    created = await lost_call(sandbox)
    session = await socket_for(sandbox, created)
    try:
        with pytest.raises(UpstreamRejoinRefused) as refused:
            await session.join_confirmed(created.call_id, ("text",), seconds=5, under_way=True)
    finally:
        await session.close()
    error = refused.value
    assert error.code == "upstream_lost"  # for the visitor: the connection was lost
    assert "is under way on another connection and cannot be joined again" in error.answer
    assert "set UPSTREAM.REJOIN to 'never'" in str(error)


async def test_an_accepted_rejoin_goes_on(variant_sandbox):
    sandbox = variant_sandbox("default")
    created = await lost_call(sandbox)
    session = await socket_for(sandbox, created)
    try:
        await session.join_confirmed(created.call_id, ("text",), seconds=5, under_way=True)
        await session.send_text(created.call_id, "again")
        reply = await session.recv()
        assert isinstance(reply, Message) and reply.text.startswith("You")
    finally:
        await session.close()


# VoiceHub confirming no join at all (JOIN_CONFIRMATION "none")


@pytest.fixture(scope="module")
def unconfirmed() -> Iterator[dict[str, RunningSandbox]]:
    """Sandboxes that confirm no join, one letting calls be joined again, one not."""
    running: dict[str, RunningSandbox] = {}
    threads = []
    for rejoin in ("auto", "never"):
        profile = build_profile({"JOIN_CONFIRMATION": "none", "REJOIN": rejoin})
        app = Sandbox(SandboxConfig(profile=profile, word_delay=0.0))
        thread = ServerThread(app, name=f"sandbox-unconfirmed-{rejoin}").start()
        threads.append(thread)
        running[rejoin] = RunningSandbox(app, thread)
    yield running
    for thread in threads:
        thread.stop()


async def test_without_confirmations_a_refusal_after_the_join_is_still_seen(unconfirmed):
    sandbox = unconfirmed["never"]
    profile = sandbox.app.profile
    created = await lost_call(sandbox, profile)
    session = await socket_for(sandbox, created, profile)
    try:
        with pytest.raises(UpstreamRejoinRefused):
            await session.join_confirmed(created.call_id, ("text",), seconds=5, under_way=True)
    finally:
        await session.close()


async def test_without_confirmations_a_rejoin_nobody_refuses_is_taken(unconfirmed):
    sandbox = unconfirmed["auto"]
    profile = sandbox.app.profile
    created = await lost_call(sandbox, profile)
    session = await socket_for(sandbox, created, profile)
    try:
        await session.join_confirmed(created.call_id, ("text",), seconds=5, under_way=True)
        assert sandbox.state.calls[created.call_id].rejoins == 1
    finally:
        await session.close()
