"""Calls move between relay processes: a process that is gone or stopping loses no
conversation. Two processes in one: each ``RelayProcess`` has its own id, lease and calls,
and they share the database, the cache and the (in-memory) channel layer, as processes
share PostgreSQL and Redis (tests/test_chaos.py does it with real processes)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.core.cache import cache
from django.utils import timezone
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import create_call, relay_app, socket_path
from tests.polling import until
from tests.relay.test_consumer import (
    closed_with,
    hang_up,
    live_call,
    load,
    next_json,
    receive_until,
    resumable_call,
    resume,
    resume_path,
)
from tests.servers import ServerThread
from webcall_widget import leases
from webcall_widget.conf import get_settings
from webcall_widget.models import Call, CallStatus
from webcall_widget.relay import adoption, mailbox, stopping
from webcall_widget.relay import bridge as bridge_module
from webcall_widget.relay import resume as resume_module
from webcall_widget.relay.bridge import Bridge
from webcall_widget.relay.mailbox import aend_call
from webcall_widget.relay.process import RelayProcess, current
from webcall_widget.relay.protocol import CloseCode

pytestmark = pytest.mark.django_db(transaction=True)


class Process:
    """A relay process of the test: its ``RelayProcess`` and its relay's routes."""

    def __init__(self, **options) -> None:
        self.process = RelayProcess()
        self.app = relay_app(process=self.process, **options)

    def relaying(self) -> adoption.Relaying:
        from channels.layers import get_channel_layer

        return adoption.Relaying(self.process, get_settings(), get_channel_layer())

    def holds(self, call_id: str) -> Bridge | None:
        wanted = uuid.UUID(call_id)
        found = [c for c in self.process.calls.live_calls() if c.call_id == wanted]
        return found[0] if found and isinstance(found[0], Bridge) else None


async def stop_processes(*processes: Process) -> None:
    for each in processes:
        await asyncio.gather(*(c.server_stopping() for c in each.process.calls.live_calls()))
        await each.process.stop_housekeeping()


@pytest.fixture
async def two(resumable):
    a, b = Process(attach_timeout=0.2), Process(attach_timeout=0.2)
    yield a, b
    await stop_processes(a, b)


def replies_typed_at(monkeypatch, sandbox, seconds: float) -> None:
    """The echo agent types its replies a word every ``seconds``, for this test."""
    monkeypatch.setattr(
        sandbox.app, "config", dataclasses.replace(sandbox.app.config, word_delay=seconds)
    )


async def call_on(process: Process, async_client, open_socket, agent, mode="text"):
    """A live call held by ``process``: its id, the socket and its resume token."""
    return await resumable_call(async_client, open_socket, agent, mode, application=process.app)


async def test_a_call_whose_process_lease_lapsed_is_taken_over_without_waiting_for_it(
    sandbox, two, agent, async_client, open_socket
):
    a, b = two
    b_waits_forever = Process(attach_timeout=3600)
    call_id, socket, token = await call_on(a, async_client, open_socket, agent)
    await socket.disconnect(code=1006)
    await sync_to_async(leases.drop)(a.process.id)  # A is gone: no lease
    back, ready = await asyncio.wait_for(
        resume(open_socket, token, application=b_waits_forever.app), 10
    )
    assert ready["resumed"] is True
    await next_json(back)  # the transcript
    await back.send_json_to({"type": "text", "text": "still there?"})
    await receive_until(back, lambda f: f.get("text") == "You said: still there?")
    assert b_waits_forever.holds(call_id) is not None
    # A was told to let go. B does not wait for a process whose lease lapsed, so A may
    # still be writing what was said (a busy machine: seen under two nox sessions).
    await until(lambda: a.holds(call_id) is None)
    await hang_up(back)
    await stop_processes(b_waits_forever)


async def test_the_sweeper_ends_a_gone_processs_calls_where_voicehub_refuses_rejoins(
    sandbox, no_rejoin, agent
):
    call = await database_sync_to_async(Call.objects.create)(
        agent=agent,
        mode="text",
        status=CallStatus.LIVE,
        owner="gone-host:1:abc",
        voicehub_call_id="vh-gone",
        connected_at=timezone.now(),
        live_at=timezone.now(),
    )
    sweeper = Process()
    assert await adoption.sweep(sweeper.relaying()) == 1
    call = await database_sync_to_async(Call.objects.get)(pk=call.pk)
    assert (call.status, call.end_reason, call.error_code) == (
        CallStatus.FAILED,
        "relay-lost",
        "relay_lost",
    )
    assert call.ended_at is not None


async def test_the_sweeper_leaves_the_calls_of_live_processes_alone(sandbox, no_rejoin, agent):
    owner = Process()
    await owner.process.renew()
    await database_sync_to_async(Call.objects.create)(
        agent=agent, mode="text", status=CallStatus.LIVE, owner=owner.process.id
    )
    assert await adoption.sweep(Process().relaying()) == 0


async def test_the_sweeper_takes_over_a_gone_processs_call_and_waits_for_its_visitor(
    sandbox, two, agent, async_client, open_socket
):
    a, b = two
    call_id, socket, token = await call_on(a, async_client, open_socket, agent)
    await socket.disconnect(code=1006)
    holder = a.holds(call_id)
    assert holder is not None
    await holder.let_go()  # A dies: its call stays live, and its lease goes
    await sync_to_async(leases.drop)(a.process.id)
    assert await adoption.sweep(b.relaying()) == 1
    assert b.holds(call_id) is not None
    back, ready = await resume(open_socket, token, application=b.app)
    assert ready["resumed"] is True
    await next_json(back)
    await back.send_json_to({"type": "text", "text": "found you"})
    await receive_until(back, lambda f: f.get("text") == "You said: found you")
    await hang_up(back)
    call, _ = await load(call_id)
    assert (call.end_reason, call.owner) == ("visitor-ended", b.process.id)


async def test_the_sweeper_takes_over_a_voice_call_joining_the_channels_its_mode_needs(
    sandbox, two, agent_factory, async_client, open_socket
):
    """VoiceHub wants a voice call's socket to join ``audio`` (its documented rules): the
    sweeper's new socket joins it with ``text``, then leaves ``audio`` while the call waits
    for its visitor, who gets their voice back when they return."""
    a, b = two
    voice = await sync_to_async(agent_factory)(voicehub_agent_id="loopback-agent")
    call_id, socket, token = await call_on(a, async_client, open_socket, voice, "TextAudio")
    await socket.disconnect(code=1006)
    holder = a.holds(call_id)
    assert holder is not None
    await holder.let_go()  # A dies: its call stays live, and its lease goes
    await sync_to_async(leases.drop)(a.process.id)
    assert await adoption.sweep(b.relaying()) == 1
    back, ready = await resume(open_socket, token, application=b.app)
    assert ready["resumed"] is True, ready
    await next_json(back)  # the transcript
    frame = bytes(range(256)) * 2 + bytes(128)  # 20 ms at 16 kHz
    await back.send_to(bytes_data=frame)
    while (output := await back.receive_output(timeout=5)).get("bytes") != frame:
        assert output["type"] == "websocket.send", output
    vh_call = (await load(call_id))[0].voicehub_call_id
    joins = [r.data["channels"] for r in sandbox.state.records if r.event == "channel.join"]
    leaves = [r.data["channels"] for r in sandbox.state.records if r.event == "channel.leave"]
    assert joins[-2:] == [["audio", "text"], ["audio"]]  # the sweeper's, then the visitor's
    assert ["audio"] in leaves and vh_call
    await hang_up(back)


async def test_a_stopping_process_hands_its_calls_over_and_loses_no_message(
    sandbox, two, agent, async_client, open_socket
):
    a, b = two
    call_id, socket, token = await call_on(a, async_client, open_socket, agent)
    await socket.send_json_to({"type": "text", "text": "one", "id": "w1"})
    await receive_until(socket, lambda f: f.get("text") == "You said: one")
    draining = asyncio.create_task(stopping.drain(a.process, seconds=20))
    assert await closed_with(socket) == CloseCode.MOVING  # the widget resumes at once
    back, ready = await resume(open_socket, token, application=b.app)
    assert ready["resumed"] is True
    replay = [m["text"] for m in (await next_json(back))["messages"]]
    assert replay[-2:] == ["one", "You said: one"]
    await asyncio.wait_for(draining, 10)  # A let go as soon as B had joined
    assert a.holds(call_id) is None and b.holds(call_id) is not None
    await back.send_json_to({"type": "text", "text": "two", "id": "w2"})
    await receive_until(back, lambda f: f.get("text") == "You said: two")
    await hang_up(back)
    call, transcript = await load(call_id)
    assert (call.end_reason, call.owner) == ("visitor-ended", b.process.id)
    finals = [text for role, text, final in transcript if final and role == "user"]
    assert finals == ["one", "two"]


async def test_a_stopping_process_sends_the_visitor_on_once_the_agent_has_answered(
    sandbox, two, agent, async_client, open_socket, monkeypatch
):
    """The visitor's last message is answered on the socket it was sent on, before the
    call moves: the sandbox, as a VoiceHub may, drops what a socket that was taken over
    was about to say."""
    a, b = two
    replies_typed_at(monkeypatch, sandbox, 0.1)
    call_id, socket, token = await call_on(a, async_client, open_socket, agent)
    reply = "You said: a question that takes the agent a while to answer"
    await socket.send_json_to({"type": "text", "text": reply.removeprefix("You said: ")})
    draining = asyncio.create_task(stopping.drain(a.process, seconds=20))
    frames = await receive_until(socket, lambda f: f.get("text") == reply and f["final"])
    assert all(f["type"] == "message" for f in frames)
    assert await closed_with(socket) == CloseCode.MOVING
    back, ready = await resume(open_socket, token, application=b.app)
    replay = (await next_json(back))["messages"]
    assert replay[-1] == {"id": frames[-1]["id"], "role": "agent", "text": reply, "final": True}
    await asyncio.wait_for(draining, 10)
    await hang_up(back)


async def test_a_stopping_process_sends_the_visitor_on_without_an_answer_after_a_while(
    sandbox, two, agent, async_client, open_socket, monkeypatch
):
    """An agent that does not answer keeps the call where it is for a few seconds at most."""
    monkeypatch.setattr(bridge_module, "ANSWER_PATIENCE_SECONDS", 0.3)
    a, b = two
    replies_typed_at(monkeypatch, sandbox, 30)
    _, socket, token = await call_on(a, async_client, open_socket, agent)
    await socket.send_json_to({"type": "text", "text": "a slow reply, please"})
    await receive_until(socket, lambda f: f["type"] == "message" and not f["final"])
    draining = asyncio.create_task(stopping.drain(a.process, seconds=20))
    assert await asyncio.wait_for(closed_with(socket), 5) == CloseCode.MOVING
    back, ready = await resume(open_socket, token, application=b.app)
    assert ready["resumed"] is True
    await next_json(back)  # the transcript
    await asyncio.wait_for(draining, 10)
    await hang_up(back)


async def test_a_stopping_process_refuses_new_sockets_so_they_go_elsewhere(
    sandbox, two, agent, async_client, open_socket
):
    a, b = two
    a.process.draining = True
    response = await create_call(async_client, agent.slug, "text")
    refused = open_socket(socket_path(response), application=a.app)
    assert (await refused.connect(timeout=5))[0]
    assert await closed_with(refused) == CloseCode.MOVING
    again = open_socket(socket_path(response), application=b.app)  # the token is unused
    assert (await again.connect(timeout=5))[0]
    assert (await next_json(again))["type"] == "ready"
    assert (await next_json(again))["role"] == "agent"  # the greeting
    await hang_up(again)


async def test_under_uvicorn_a_stopping_process_refuses_a_resume_s_handshake_with_503(
    sandbox, two, agent, async_client, open_socket
):
    """Behind nginx (``proxy_next_upstream http_503``) the resume then lands on the next
    process at once, whichever process the load balancer chose first; other sockets are
    still accepted and sent on with 4013, which the widget tries again itself."""
    a, b = two
    _, socket, token = await call_on(b, async_client, open_socket, agent)
    a.process.draining = True
    with ServerThread(a.app, name="stopping-relay") as server:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{server.ws_url}/ws/webcall/{token}/"):
                pass
        assert refused.value.response.status_code == 503
        assert refused.value.response.headers["Retry-After"] == "1"
        async with connect(f"{server.ws_url}/ws/webcall/start/{agent.slug}/") as start:
            with pytest.raises(ConnectionClosed):
                await start.recv()
        assert start.close_code == CloseCode.MOVING
    await hang_up(socket)  # the call goes on where it is


async def test_without_rejoins_a_stopping_process_lets_calls_run_then_ends_them_1012(
    sandbox, no_rejoin, two, agent, async_client, open_socket
):
    a, _ = two
    call_id, socket, _ = await call_on(a, async_client, open_socket, agent)
    draining = asyncio.create_task(stopping.drain(a.process, seconds=1.0))
    await socket.send_json_to({"type": "text", "text": "while it drains"})
    await receive_until(socket, lambda f: f.get("text") == "You said: while it drains")
    frames = await receive_until(socket, lambda f: f["type"] == "ended")
    assert frames[-1]["reason"] == "relay-stopped"
    assert await closed_with(socket) == CloseCode.RESTARTING
    await draining
    call, _ = await load(call_id)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "relay-stopped")


async def test_a_drain_that_hangs_is_given_up_so_that_the_server_still_stops(
    monkeypatch, settings, caplog
):
    """The cache never answers the drain's first step (a stand-in: a real cache that
    hangs rather than fails cannot be made here); the stop goes on after its bound."""
    settings.WEBCALL_WIDGET = {"DRAIN_SECONDS": 0.1}
    monkeypatch.setattr(stopping, "ANSWER_PATIENCE_SECONDS", 0.1)
    monkeypatch.setattr(stopping, "DRAIN_MARGIN_SECONDS", 0.1)
    process = RelayProcess()
    monkeypatch.setattr(process, "renew", asyncio.Event().wait)
    await asyncio.wait_for(stopping.drain_within_bounds(process), 5)
    assert "its drain did not finish within 0.3 s" in caplog.text


# Redis restarted: the cache lost every lease, the channel layer every group


async def test_after_the_cache_lost_every_lease_no_call_is_taken_for_a_lease_period():
    """A process that finds its own lease gone when it renews it knows the others' went too
    (a Redis restart): they look gone until they write theirs again, so its sweeper waits a
    lease period instead of taking their calls."""
    loop = asyncio.get_running_loop()
    other = RelayProcess()
    await other.renew()
    seen: list[tuple[float, set[str]]] = []

    async def sweep(_: RelayProcess) -> None:
        seen.append((loop.time(), await sync_to_async(leases.gone)([other.id])))

    me = RelayProcess(renew_seconds=0.05, lease_seconds=0.5)
    me.sweep_with(sweep)
    await me.start()
    await asyncio.sleep(0.15)
    await sync_to_async(cache.clear)()
    cleared = loop.time()
    await asyncio.sleep(0.2)
    await other.renew()  # the other process writes its lease again, as it does every 5 s
    await asyncio.sleep(0.6)
    await me.stop_housekeeping()
    assert not [at for at, _ in seen if cleared < at < cleared + 0.45], "no sweep meanwhile"
    assert seen[-1][0] > cleared + 0.5, "it sweeps again afterwards"
    assert all(gone == set() for _, gone in seen), "the other process never looked gone"
    assert me.quiet_until > cleared


async def test_a_process_serving_again_after_its_stop_takes_its_lapsed_lease_for_no_cache_loss():
    """A process that stopped (its lease dropped or lapsed) and serves again (a test's live
    server; a process whose stop was called off) finds no lease of its own on its first
    renewal, as it should: no reason to hold off other processes' calls."""
    me = RelayProcess(renew_seconds=60)
    await me.start()
    await me.stop_housekeeping()
    await me.release()
    await me.start()
    await me.stop_housekeeping()
    assert not me.leases_doubtful()


async def test_a_call_rejoins_its_group_when_the_cache_lost_every_lease(
    sandbox, agent, async_client, open_socket
):
    """The restart that emptied the cache emptied the channel layer's groups: the process
    has its calls join theirs again, so the admin still reaches them."""
    from channels.layers import get_channel_layer

    call_id, socket = await live_call(async_client, open_socket, agent)
    get_channel_layer().groups.clear()  # what Redis held is gone
    await sync_to_async(cache.clear)()
    await current.renew()  # its next renewal finds its own lease gone
    await aend_call(call_id)
    frames = await receive_until(socket, lambda f: f["type"] == "ended")
    assert frames[-1]["reason"] == "ended-by-staff"


async def test_a_mailbox_whose_channel_layer_failed_joins_again_once_it_answers(
    sandbox, agent, async_client, open_socket, monkeypatch
):
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    receive = layer.receive
    failures = [ConnectionError("Error 111 connecting to 127.0.0.1:6379")]

    async def failing_once(channel: str):
        if failures:
            raise failures.pop()
        return await receive(channel)

    monkeypatch.setattr(layer, "receive", failing_once)
    call_id, socket = await live_call(async_client, open_socket, agent)
    await asyncio.sleep(mailbox.RETRY_FIRST_SECONDS + 0.2)
    await aend_call(call_id)
    frames = await receive_until(socket, lambda f: f["type"] == "ended")
    assert frames[-1]["reason"] == "ended-by-staff"
    assert not failures


async def resumed_through(
    other: Process, open_socket, token: str, *, held_by: Process, call_id: str
) -> None:
    """The visitor resumes through ``other`` and talks on with the call still where it was
    held; then hangs up."""
    back, ready = await resume(open_socket, token, application=other.app)
    assert ready["resumed"] is True
    await next_json(back)  # the transcript
    await back.send_json_to({"type": "text", "text": "still there?"})
    await receive_until(back, lambda f: f.get("text") == "You said: still there?")
    assert held_by.holds(call_id) is not None and other.holds(call_id) is None
    await hang_up(back)


@pytest.mark.parametrize("down", ["cache", "channel layer"])
async def test_a_resume_through_another_process_while_redis_is_down_keeps_its_token(
    sandbox, resumable, agent, async_client, open_socket, monkeypatch, down
):
    """The visitor comes back through a process that must find (the cache's leases) and
    reach (the channel layer) the one holding the call, while Redis does not answer. Their
    socket is sent to resume again (4013) and their token stays good: once Redis answers,
    the same token resumes the call, still held where it was (it used the token up, then
    failed: the widget's next try was refused token_used and the visitor lost the call)."""
    from channels.layers import get_channel_layer

    def unanswered(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    a, b = Process(), Process()
    try:
        call_id, socket, token = await call_on(a, async_client, open_socket, agent)
        await socket.disconnect(code=1006)
        with monkeypatch.context() as redis_down:
            if down == "cache":
                redis_down.setattr(resume_module, "alive", sync_to_async(unanswered))
            else:
                redis_down.setattr(get_channel_layer(), "group_send", sync_to_async(unanswered))
            refused = open_socket(resume_path(token), application=b.app)
            assert (await refused.connect(timeout=5))[0]
            assert await closed_with(refused) == CloseCode.MOVING
        await resumed_through(b, open_socket, token, held_by=a, call_id=call_id)
    finally:
        await stop_processes(a, b)


@pytest.mark.parametrize("noticed", [False, True], ids=["before", "after its renewal"])
async def test_a_resume_through_another_process_just_after_redis_restarted_takes_no_call(
    sandbox, resumable, agent, async_client, open_socket, noticed
):
    """Redis came back empty: no lease, no group. The visitor comes back through another
    process before the one holding their call wrote its lease again and had the call's
    mailbox join its group again: a missing lease and a silent owner prove nothing then,
    and the visitor is sent to try again (the call was taken from a process that was alive,
    which went on relaying it too; without rejoins it was ended relay-lost). Once the owner
    has written its lease again, the same token reaches the call where it is held. The
    process the visitor comes through knows of the restart before its next renewal (its own
    lease is gone too) and for a lease period after it."""
    from channels.layers import get_channel_layer

    a, b = Process(attach_timeout=0.3), Process(attach_timeout=0.3)
    try:
        call_id, socket, token = await call_on(a, async_client, open_socket, agent)
        await socket.disconnect(code=1006)
        await b.process.start()
        get_channel_layer().groups.clear()
        await sync_to_async(cache.clear)()
        if noticed:
            await b.process.renew()
        early = open_socket(resume_path(token), application=b.app)
        assert (await early.connect(timeout=5))[0]
        assert await closed_with(early) == CloseCode.MOVING
        assert a.holds(call_id) is not None and b.holds(call_id) is None
        await a.process.renew()  # finds its lease gone: writes it again, rejoins the group
        await resumed_through(b, open_socket, token, held_by=a, call_id=call_id)
    finally:
        await stop_processes(a, b)
