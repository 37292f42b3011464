"""Liveness and readiness: what a load balancer or a Kubernetes probe is told, with the
dependencies made to fail for real (a Redis that is not there, a server that accepts and
never answers, a PostgreSQL at a closed port)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from channels.layers import get_channel_layer
from django.db.utils import ConnectionHandler
from django.test import override_settings

from tests.clocks import HandClock
from tests.redis_server import running_redis
from tests.relay.test_consumer import live_call
from tests.servers import free_port
from webcall_widget.channel_layers import redis_channel_layer
from webcall_widget.health import views
from webcall_widget.health.readiness import (
    ChannelLayerCheck,
    Probe,
    Readiness,
    Worker,
    cache_check,
    database_check,
)
from webcall_widget.relay import process

pytestmark = pytest.mark.django_db(transaction=True)

LIVE = "/webcall/health/live"
READY = "/webcall/health/ready"


@pytest.fixture(autouse=True)
async def _fresh_process() -> AsyncIterator[None]:
    """Each test asks the dependencies anew, and leaves no housekeeping task behind."""
    views.READINESS.forget()
    yield
    views.READINESS.forget()
    await process.current.stop_housekeeping()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose server accepts connections (the kernel does) and never answers; once
    the test ends, it goes away and every connection to it is reset."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def redis_cache(url: str) -> dict[str, dict[str, str]]:
    return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}


def postgres_at(port: int) -> ConnectionHandler:
    """A PostgreSQL connection of its own, to ``port`` on this host."""
    return ConnectionHandler(
        {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "HOST": "127.0.0.1",
                "PORT": port,
                "NAME": "webcall_widget",
                "USER": "postgres",
                "OPTIONS": {"connect_timeout": 5},
            }
        }
    )


@contextlib.asynccontextmanager
async def channel_layer(config: dict[str, object]) -> AsyncIterator[None]:
    with override_settings(CHANNEL_LAYERS={"default": config}):
        try:
            yield
        finally:
            await get_channel_layer().close_pools()


# live


async def test_live_answers_200_with_the_process_and_its_voice_capacity(async_client, settings):
    settings.WEBCALL_WIDGET = {**settings.WEBCALL_WIDGET, "LIMITS": {"VOICE_CALLS_PER_PROCESS": 7}}
    response = await async_client.get(LIVE)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "live"
    assert body["process"] == process.current.id
    assert (body["calls"], body["voice_calls"], body["voice_capacity"]) == (0, 0, 7)


async def test_a_health_check_starts_the_process_housekeeping(async_client):
    """A process that only gets probes still renews its lease."""
    await process.current.stop_housekeeping()
    await async_client.get(LIVE)
    assert process.current._task is not None and not process.current._task.done()


# ready


async def test_ready_answers_200_when_database_cache_and_channel_layer_answer(async_client):
    response = await async_client.get(READY)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ready"
    assert "failed" not in body
    for name in ("database", "cache", "channel_layer", "draining", "capacity"):
        assert body["checks"][name]["ok"] is True, name


async def test_ready_answers_503_naming_a_cache_that_refuses_connections(async_client):
    with override_settings(CACHES=redis_cache(f"redis://127.0.0.1:{free_port()}/0")):
        response = await async_client.get(READY)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["failed"] == ["cache"]
    assert body["checks"]["cache"] == {"ok": False, "error": "ConnectionError"}


async def test_a_failed_check_names_no_host_and_no_port(async_client):
    port = free_port()
    with override_settings(CACHES=redis_cache(f"redis://127.0.0.1:{port}/0")):
        response = await async_client.get(READY)
    assert response.status_code == 503
    assert "127.0.0.1" not in response.content.decode()
    assert str(port) not in response.content.decode()


@pytest.mark.redis
async def test_ready_answers_503_when_the_channel_layer_s_redis_is_not_there(async_client):
    async with channel_layer(redis_channel_layer(f"redis://127.0.0.1:{free_port()}/0")):
        response = await async_client.get(READY)
    assert response.status_code == 503
    assert response.json()["failed"] == ["channel_layer"]


async def test_ready_answers_503_while_the_process_drains(async_client):
    process.current.draining = True
    try:
        response = await async_client.get(READY)
    finally:
        process.current.draining = False
    assert response.status_code == 503
    assert response.json()["failed"] == ["draining"]
    assert response.json()["draining"] is True


async def test_ready_answers_503_once_the_process_holds_its_voice_capacity(
    sandbox, settings, agent, async_client, open_socket
):
    settings.WEBCALL_WIDGET = {**settings.WEBCALL_WIDGET, "LIMITS": {"VOICE_CALLS_PER_PROCESS": 1}}
    await live_call(async_client, open_socket, agent, "WebAudio")
    response = await async_client.get(READY)
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["capacity"]
    assert (body["voice_calls"], body["voice_capacity"]) == (1, 1)


async def test_text_calls_leave_the_voice_capacity_free(
    sandbox, settings, agent, async_client, open_socket
):
    settings.WEBCALL_WIDGET = {**settings.WEBCALL_WIDGET, "LIMITS": {"VOICE_CALLS_PER_PROCESS": 1}}
    await live_call(async_client, open_socket, agent, "text")
    response = await async_client.get(READY)
    assert response.status_code == 200, response.json()
    assert (response.json()["calls"], response.json()["voice_calls"]) == (1, 0)


async def test_the_health_answers_show_no_call_id(sandbox, agent, async_client, open_socket):
    call_id, _ = await live_call(async_client, open_socket, agent, "text")
    for path in (LIVE, READY):
        response = await async_client.get(path)
        assert response.json()["calls"] == 1
        assert call_id not in response.content.decode()
        assert call_id.replace("-", "") not in response.content.decode()


# the HTTP around them


@pytest.mark.parametrize("path", [LIVE, READY])
@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
async def test_other_methods_get_405_in_the_app_s_error_shape(async_client, path, method):
    response = await getattr(async_client, method)(path)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", [LIVE, READY])
async def test_head_answers_like_get_without_a_body(async_client, path):
    response = await async_client.head(path)
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize("path", [LIVE, READY])
async def test_health_answers_are_never_cached(async_client, path):
    response = await async_client.get(path)
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", [LIVE, READY])
async def test_health_endpoints_answer_404_when_turned_off(async_client, settings, path):
    settings.WEBCALL_WIDGET = {**settings.WEBCALL_WIDGET, "HEALTH": {"ENABLED": False}}
    response = await async_client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# the checks themselves


async def test_a_database_that_refuses_connections_fails_its_check():
    database = postgres_at(free_port())
    readiness = Readiness({"database": Worker("db", database_check(lambda: database["default"]))})
    checks = await readiness.check(within=5)
    assert checks["database"].ok is False
    assert checks["database"].error == "OperationalError"


async def test_a_database_that_does_not_answer_fails_its_check_in_time(silent_port):
    database = postgres_at(silent_port)
    readiness = Readiness({"database": Worker("db", database_check(lambda: database["default"]))})
    checks = await readiness.check(within=0.2)
    assert checks["database"].ok is False
    assert checks["database"].error == "no answer within 0.2 s"


async def test_a_cache_that_does_not_answer_fails_its_check_in_time(silent_port):
    with override_settings(CACHES=redis_cache(f"redis://127.0.0.1:{silent_port}/0")):
        readiness = Readiness({"cache": Worker("cache", cache_check("health-test"))})
        checks = await readiness.check(within=0.2)
    assert checks["cache"].ok is False
    assert checks["cache"].error == "no answer within 0.2 s"


@pytest.mark.redis
async def test_a_channel_layer_whose_redis_does_not_answer_fails_its_check_in_time(silent_port):
    async with channel_layer(redis_channel_layer(f"redis://127.0.0.1:{silent_port}/0")):
        readiness = Readiness({"channel_layer": ChannelLayerCheck()})
        checks = await readiness.check(within=0.2)
    assert checks["channel_layer"].error == "no answer within 0.2 s"


@pytest.mark.redis
async def test_redis_as_cache_and_channel_layer_passes_both_checks():
    with running_redis() as url:
        probes: dict[str, Probe] = {
            "cache": Worker("cache", cache_check("health-test")),
            "layer": ChannelLayerCheck(),
        }
        async with channel_layer(redis_channel_layer(url, prefix="health-test")):
            with override_settings(CACHES=redis_cache(url)):
                checks = await Readiness(probes).check(within=5)
    assert checks["cache"].ok and checks["layer"].ok, checks


@pytest.mark.redis
async def test_the_channel_layer_check_passes_while_calls_wait_on_their_mailboxes():
    """channels_redis reads all of a process's channels under one lock, and a receiver
    holds it for its blocking read (5 s): a channel of another prefix was read only between
    those, so a process with a live call was never ready (seen under 20 calls)."""
    with running_redis() as url:
        async with channel_layer(redis_channel_layer(url, prefix="health-test")):
            layer = get_channel_layer()
            channel = await layer.new_channel()
            mailbox = asyncio.create_task(layer.receive(channel))
            await asyncio.sleep(0.1)  # it holds the receive lock, in its blocking read
            try:
                checks = await Readiness({"layer": ChannelLayerCheck()}).check(within=0.5)
            finally:
                # Ended by a message rather than cancelled in the middle of its read, which
                # leaves channels_redis a connection that takes seconds to close.
                await layer.send(channel, {"type": "done"})
                await mailbox
    assert checks["layer"].ok, checks


async def test_no_channel_layer_is_not_a_failure():
    with override_settings(CHANNEL_LAYERS={}):
        checks = await Readiness({"channel_layer": ChannelLayerCheck()}).check(within=1)
    assert checks["channel_layer"].ok is True
    assert checks["channel_layer"].note == "none configured"


# what a check costs


class CountingProbe:
    """A dependency that answers at once and counts its round trips."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        await asyncio.sleep(0)


async def test_answers_are_reused_for_a_second():
    clock, probe = HandClock(), CountingProbe()
    readiness = Readiness({"dependency": probe}, clock=clock)
    await readiness.check(within=1)
    clock.now += 0.9
    await readiness.check(within=1)
    assert probe.calls == 1
    clock.now += 0.2
    await readiness.check(within=1)
    assert probe.calls == 2


async def test_checks_at_the_same_time_share_one_round_trip():
    probe = CountingProbe()
    readiness = Readiness({"dependency": probe}, clock=HandClock())
    await asyncio.gather(*(readiness.check(within=1) for _ in range(5)))
    assert probe.calls == 1


async def test_a_hung_dependency_holds_one_thread_however_often_it_is_checked():
    release, calls = threading.Event(), []

    def hang() -> None:
        calls.append(1)
        release.wait(10)

    worker = Worker("hung", hang)
    clock = HandClock()
    readiness = Readiness({"hung": worker}, clock=clock)
    for _ in range(3):
        clock.now += 5
        checks = await readiness.check(within=0.05)
        assert checks["hung"].error == "no answer within 0.05 s"
    assert len(calls) == 1
    release.set()
    clock.now += 5
    assert (await readiness.check(within=5))["hung"].ok  # once it answers, so does the check
