"""A call outlives a lost socket: the sandbox keeps it for a while and lets a new socket go
on with it (REJOIN "auto"), or refuses the new socket and ends the call (REJOIN "never")."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from webcall_widget.sandbox.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY
from webcall_widget.sandbox.variants import variant_profile
from webcall_widget.voicehub.client import CreatedCall, create_web_call
from webcall_widget.voicehub.errors import UpstreamClosed
from webcall_widget.voicehub.events import (
    Audio,
    CallEnded,
    Joined,
    Message,
    Mode,
    UpstreamError,
)
from webcall_widget.voicehub.opening import open_session
from webcall_widget.voicehub.profile import UpstreamProfile
from webcall_widget.voicehub.session import UpstreamSession


async def create(sandbox, mode: Mode = Mode.TEXT) -> CreatedCall:
    return await asyncio.to_thread(
        create_web_call,
        sandbox.url,
        api_key=SANDBOX_API_KEY,
        agent_id=SANDBOX_AGENT_ID,
        mode=mode,
        timeout=5,
    )


async def socket_for(
    sandbox, created: CreatedCall, profile: UpstreamProfile | None = None
) -> UpstreamSession:
    """A new socket to ``created``'s call, as a relay process would open one."""
    return await open_session(
        base_url=sandbox.url,
        socket_path=created.socket_path,
        connect_timeout=5,
        profile=profile or UpstreamProfile(),
    )


async def joined_with_greeting(session: UpstreamSession, call_id: str) -> None:
    await session.join(call_id, ("text",))
    assert await session.recv() == Joined(("text",))
    greeting = await session.recv()
    assert isinstance(greeting, Message) and greeting.final


async def reply_to(session: UpstreamSession, call_id: str, text: str) -> Message:
    """The agent's final answer to ``text`` (agent audio skipped)."""
    await session.send_text(call_id, text)
    while True:
        event = await session.recv()
        if isinstance(event, Message) and event.final:
            return event
        assert isinstance(event, Message | Audio), event


async def events_until_closed(session: UpstreamSession) -> list[object]:
    events: list[object] = []
    with pytest.raises(UpstreamClosed):
        while True:
            events.append(await session.recv())
    return events


@pytest.fixture
async def sockets():
    """Closes every session a test opened."""
    opened: list[UpstreamSession] = []

    def keep(session: UpstreamSession) -> UpstreamSession:
        opened.append(session)
        return session

    yield keep
    for session in opened:
        await session.close()


@pytest.mark.parametrize("variant", ["default", "websocket"])
async def test_a_new_socket_goes_on_with_a_call_whose_socket_was_lost(
    variant, variant_sandbox, sockets
):
    sandbox = variant_sandbox(variant)
    profile = variant_profile(variant)
    created = await create(sandbox)
    call_id = created.call_id
    first = sockets(await socket_for(sandbox, created, profile))
    await joined_with_greeting(first, call_id)
    before = await reply_to(first, call_id, "one")
    await first.abort()
    call = sandbox.state.calls[call_id]
    await sandbox.state.await_for(lambda: call.lost_at is not None)

    second = sockets(await socket_for(sandbox, created, profile))
    held = await second.join_confirmed(call_id, ("text",), seconds=5, under_way=True)
    after = await reply_to(second, call_id, "two")
    assert held == []  # no second greeting
    assert (before.id, after.id) == (f"{call_id[:8]}-2", f"{call_id[:8]}-3")
    assert after.text == "You said: two"
    assert (call.ended, call.rejoins, call.said) == (None, 1, ["one", "two"])


async def test_a_socket_that_says_goodbye_ends_the_call_as_before(variant_sandbox, sockets):
    """A Socket.IO disconnect is the client's goodbye, channels left or not."""
    sandbox = variant_sandbox("default")
    created = await create(sandbox)
    first = await socket_for(sandbox, created)
    await joined_with_greeting(first, created.call_id)
    await first.close()
    call = sandbox.state.calls[created.call_id]
    assert await sandbox.state.await_for(lambda: call.ended) == "client-disconnected"
    second = sockets(await socket_for(sandbox, created))
    await second.join(created.call_id, ("text",))
    refusal = await second.recv()
    assert isinstance(refusal, UpstreamError) and refusal.message == "unknown or ended call"


async def test_a_lost_call_nobody_joins_again_ends_after_the_grace_period(
    variant_sandbox, sockets
):
    sandbox = variant_sandbox("default")
    original = sandbox.app.config
    sandbox.app.config = dataclasses.replace(original, rejoin_grace=0.3)
    try:
        created = await create(sandbox)
        first = await socket_for(sandbox, created)
        await joined_with_greeting(first, created.call_id)
        await first.abort()
        call = sandbox.state.calls[created.call_id]
        await sandbox.state.await_for(lambda: call.lost_at is not None)
        assert call.ended is None
        assert await sandbox.state.await_for(lambda: call.ended, seconds=3) == "client-lost"
    finally:
        sandbox.app.config = original


async def test_a_second_socket_takes_over_a_call_whose_first_is_still_open(
    variant_sandbox, sockets
):
    """A handover: the first socket leaving afterwards no longer ends the call."""
    sandbox = variant_sandbox("default")
    created = await create(sandbox)
    call_id = created.call_id
    first = sockets(await socket_for(sandbox, created))
    await joined_with_greeting(first, call_id)
    second = sockets(await socket_for(sandbox, created))
    await second.join_confirmed(call_id, ("text",), seconds=5, under_way=True)
    await first.leave(call_id, ("text",))
    await first.close()
    call = sandbox.state.calls[call_id]
    await sandbox.state.await_for(lambda: sandbox.state.disconnections == 1)
    assert (await reply_to(second, call_id, "still here")).text == "You said: still here"
    assert call.ended is None


async def test_without_rejoin_a_second_socket_is_refused_and_the_call_ends(
    variant_sandbox, sockets
):
    sandbox = variant_sandbox("no-rejoin")
    created = await create(sandbox)
    call_id = created.call_id
    first = await socket_for(sandbox, created)
    await joined_with_greeting(first, call_id)
    await first.abort()
    call = sandbox.state.calls[call_id]
    await sandbox.state.await_for(lambda: call.lost_at is not None)

    second = sockets(await socket_for(sandbox, created))
    await second.join(call_id, ("text",))
    events = await events_until_closed(second)
    message = f"call {call_id} is under way on another connection and cannot be joined again"
    assert events == [UpstreamError(message), CallEnded("rejoin-refused")]
    assert call.ended == "rejoin-refused"
    (refusal,) = [r for r in sandbox.state.events(call_id, "out") if r.event == "error"]
    assert refusal.data == {"message": message, "code": "rejoin-refused"}


async def test_without_rejoin_a_first_socket_still_open_is_hung_up_too(variant_sandbox, sockets):
    sandbox = variant_sandbox("no-rejoin")
    created = await create(sandbox)
    call_id = created.call_id
    first = sockets(await socket_for(sandbox, created))
    await joined_with_greeting(first, call_id)
    second = sockets(await socket_for(sandbox, created))
    await second.join(call_id, ("text",))
    assert await events_until_closed(first) == [CallEnded("rejoin-refused")]
    assert sandbox.state.calls[call_id].ended == "rejoin-refused"
