"""Two site processes behind one Redis: limits, control messages and resumed calls span
processes.

Each process is Daphne serving the tests' ASGI application with tests/settings_redis.py:
the Redis cache (rate limits) and channels_redis (a group per call), one shared database
(a SQLite file of their own; on PostgreSQL, the test run's own test database).
A Redis server is used if one answers on 127.0.0.1:6379; otherwise the tests start their
own (redis-server from Debian, installed by scripts/install-system-deps).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.core.management import call_command
from websockets.asyncio.client import connect

from tests.redis_server import running_redis
from tests.servers import manage, post_create_call, start_daphne
from webcall_widget.models import Call

ROOT = Path(__file__).resolve().parent.parent

# The site processes share the test database on PostgreSQL: the mark has it created.
pytestmark = [
    pytest.mark.xdist_group("test_multiprocess"),
    pytest.mark.redis,
    pytest.mark.django_db,
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running_redis() as url:
        yield url


class Site:
    def __init__(self, env: dict[str, str], database: Path | None) -> None:
        self.env = env
        self.database = database  # None: the test database (PostgreSQL)
        self.urls: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []

    def manage(self, *args: str) -> str:
        return manage(self.env, *args, cwd=ROOT)

    def start(self) -> str:
        process, url = start_daphne("tests.asgi:application", cwd=ROOT, env=self.env)
        self.processes.append(process)
        self.urls.append(url)
        return url

    def call_row(self, call_id: str) -> tuple[str, str]:
        if self.database is None:
            status, end_reason = Call.objects.values_list("status", "end_reason").get(pk=call_id)
            return status, end_reason
        with sqlite3.connect(self.database) as db:
            return db.execute(
                "SELECT status, end_reason FROM webcall_widget_call WHERE id = ?",
                (uuid.UUID(call_id).hex,),
            ).fetchone()

    def resume_counts(self, call_id: str) -> tuple[int, int]:
        """The call's (suspensions, resumes)."""
        if self.database is None:
            return Call.objects.values_list("suspensions", "resumes").get(pk=call_id)
        with sqlite3.connect(self.database) as db:
            return db.execute(
                "SELECT suspensions, resumes FROM webcall_widget_call WHERE id = ?",
                (uuid.UUID(call_id).hex,),
            ).fetchone()

    def wait_for_end(self, call_id: str, seconds: float = 15) -> tuple[str, str]:
        deadline = time.monotonic() + seconds
        while (row := self.call_row(call_id))[0] not in ("ended", "failed"):
            assert time.monotonic() < deadline, row
            time.sleep(0.1)
        return row

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(10)


@pytest.fixture(scope="module")
def two_processes(
    redis_url, sandbox_server, tmp_path_factory, django_db_setup, django_db_blocker
) -> Iterator[Site]:
    from django.db import connection

    # On PostgreSQL the processes share this run's test database (already migrated).
    postgres = connection.vendor == "postgresql"
    database = None if postgres else tmp_path_factory.mktemp("multi") / "site.sqlite3"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.settings_redis",
        "MULTI_DATABASE": str(database or connection.settings_dict["NAME"]),
        "MULTI_REDIS": redis_url,
        "MULTI_PREFIX": f"webcall-test-{uuid.uuid4().hex[:8]}",
        "MULTI_SANDBOX": sandbox_server.url,
    }
    site = Site(env, database)
    if database is not None:
        site.manage("migrate", "--noinput", "-v0")
    site.manage(
        "shell",
        "-v0",
        "-c",
        "from webcall_widget.models import Agent; Agent.objects.create(name='Multi', "
        "slug='multi', voicehub_agent_id='echo-agent', api_key='sandbox-key', "
        "modes=['text'], default_mode='text', max_concurrent_calls=100)",
    )
    first, second = site.start(), site.start()
    # Behind one load balancer both processes serve one origin; here each has its own, so
    # the agents list both (a resume is bound to the origin of the page that held the call).
    site.manage(
        "shell",
        "-v0",
        "-c",
        "from webcall_widget.models import Agent; "
        f"Agent.objects.filter(slug='multi').update(allowed_origins='{first} {second}'); "
        "Agent.objects.create(name='Multi voice', slug='multi-voice', "
        "voicehub_agent_id='loopback-agent', api_key='sandbox-key', modes=['WebAudio'], "
        f"default_mode='WebAudio', max_concurrent_calls=100, allowed_origins='{first} {second}')",
    )
    yield site
    site.stop()
    if database is None:
        # The processes wrote to the test database outside any test: empty it, as a
        # transactional test leaves it, for the tests that follow.
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


def create(url: str, ip: str) -> requests.Response:
    return post_create_call(url, "multi", **{"X-Forwarded-For": ip})


def test_a_client_rate_limit_is_shared_by_every_process(two_processes):
    first, second = two_processes.urls
    ip = "198.51.100.10"
    answers = [create(url, ip).status_code for url in (first, second, first, second)]
    assert answers == [201, 201, 201, 429]  # 3 a minute per client, counted in Redis


def test_ending_a_call_reaches_the_process_that_holds_it(two_processes):
    holder = two_processes.urls[1]
    response = create(holder, "198.51.100.20")
    assert response.status_code == 201, response.text
    call_id = response.json()["call"]

    async def visitor() -> tuple[list[dict], int | None]:
        frames = []
        async with connect(response.json()["socket"], origin=holder) as ws:
            frames.append(json.loads(await ws.recv()))
            assert frames[0]["type"] == "ready"
            # A third process (a management shell) asks for the end through Redis.
            ender = asyncio.create_task(
                asyncio.to_thread(
                    two_processes.manage,
                    "shell",
                    "-v0",
                    "-c",
                    f"from webcall_widget.relay.mailbox import end_call; end_call('{call_id}')",
                )
            )
            async for message in ws:
                frames.append(json.loads(message))
            await ender
            return frames, ws.close_code

    frames, close_code = asyncio.run(asyncio.wait_for(visitor(), 60))
    assert {"type": "ended", "reason": "ended-by-staff"} in frames
    assert close_code == 1000
    assert two_processes.call_row(call_id) == ("ended", "ended-by-staff")


# a call resumed on the process that does not hold it


def ws_url(site_url: str, token: str) -> str:
    return "ws" + site_url.removeprefix("http") + f"/ws/webcall/{token}/"


async def frames_until(ws, predicate) -> list[dict]:
    """Text frames (skipping audio) up to and including the first that matches."""
    frames: list[dict] = []
    while not frames or not predicate(frames[-1]):
        message = await ws.recv()
        if isinstance(message, str):
            frames.append(json.loads(message))
    return frames


def test_a_text_call_resumed_on_the_other_process_goes_on(two_processes):
    holder, other = two_processes.urls
    response = create(holder, "198.51.100.30")
    assert response.status_code == 201, response.text
    call_id = response.json()["call"]

    async def visitor() -> tuple[list[dict], list[dict]]:
        async with connect(response.json()["socket"], origin=holder) as ws:
            ready = json.loads(await ws.recv())
            await frames_until(ws, lambda f: f.get("role") == "agent")  # the greeting
            await ws.send(json.dumps({"type": "text", "text": "before", "id": "w1"}))
            await frames_until(ws, lambda f: f.get("text") == "You said: before")
        # The socket closed without an end (a reload); the page comes back through the
        # other process, from the same page origin, once it has loaded.
        await asyncio.sleep(0.5)
        async with connect(ws_url(other, ready["resume"]["token"]), origin=holder) as ws:
            resumed = await frames_until(ws, lambda f: f["type"] == "transcript")
            await ws.send(json.dumps({"type": "text", "text": "after", "id": "w2"}))
            after = await frames_until(ws, lambda f: f.get("text") == "You said: after")
            await ws.send(json.dumps({"type": "end"}))
            after += await frames_until(ws, lambda f: f["type"] == "ended")
            await ws.wait_closed()
            assert ws.close_code == 1000
        return resumed, after

    resumed, after = asyncio.run(asyncio.wait_for(visitor(), 60))
    assert (resumed[0]["type"], resumed[0]["resumed"]) == ("ready", True)
    assert [m["text"] for m in resumed[-1]["messages"]][-2:] == ["before", "You said: before"]
    assert after[0] == {
        "type": "message",
        "id": "w2",
        "role": "user",
        "text": "after",
        "final": True,
    }
    assert after[-1] == {"type": "ended", "reason": "visitor-ended"}
    assert two_processes.wait_for_end(call_id) == ("ended", "visitor-ended")
    assert two_processes.resume_counts(call_id) == (1, 1)


def test_a_voice_call_resumed_on_the_other_process_relays_audio_both_ways(two_processes):
    """The loopback agent plays back every frame it hears: each frame goes from the
    visitor's socket on one process, through Redis, to the process holding the call, to
    the agent, and back. Prints the round trip of a frame both ways."""
    holder, other = two_processes.urls
    response = post_create_call(
        holder, "multi-voice", "WebAudio", **{"X-Forwarded-For": "198.51.100.31"}
    )
    assert response.status_code == 201, response.text
    call_id = response.json()["call"]
    frames = [bytes([n % 250 + 1]) * 640 for n in range(100)]

    async def round_trips(ws) -> list[float]:
        times = []
        for frame in frames:
            started = time.perf_counter()
            await ws.send(frame)
            while (echo := await ws.recv()) != frame:
                assert isinstance(echo, str), "audio out of order"
            times.append((time.perf_counter() - started) * 1000)
        return times

    async def visitor() -> tuple[list[float], list[float]]:
        async with connect(response.json()["socket"], origin=holder) as ws:
            ready = json.loads(await ws.recv())
            direct = await round_trips(ws)
        async with connect(ws_url(other, ready["resume"]["token"]), origin=holder) as ws:
            await frames_until(ws, lambda f: f["type"] == "transcript")
            through_redis = await round_trips(ws)
            await ws.send(json.dumps({"type": "end"}))
            await frames_until(ws, lambda f: f["type"] == "ended")
        return direct, through_redis

    direct, through_redis = asyncio.run(asyncio.wait_for(visitor(), 60))
    print(
        f"\naudio frame round trip p50: {statistics.median(direct):.2f} ms on the holding "
        f"process, {statistics.median(through_redis):.2f} ms through Redis from the other"
    )
    assert two_processes.wait_for_end(call_id) == ("ended", "visitor-ended")
    assert two_processes.resume_counts(call_id) == (1, 1)


def test_a_resume_token_cannot_be_used_twice_across_processes(two_processes):
    holder, other = two_processes.urls
    response = create(holder, "198.51.100.32")
    assert response.status_code == 201, response.text

    async def visitor() -> tuple[dict, int | None]:
        async with connect(response.json()["socket"], origin=holder) as ws:
            token = json.loads(await ws.recv())["resume"]["token"]
        async with connect(ws_url(other, token), origin=holder) as ws:
            await frames_until(ws, lambda f: f["type"] == "transcript")
            async with connect(ws_url(holder, token), origin=holder) as replay:
                refused = json.loads(await replay.recv())
                await replay.wait_closed()
                code = replay.close_code
            await ws.send(json.dumps({"type": "end"}))
            await frames_until(ws, lambda f: f["type"] == "ended")
        return refused, code

    refused, code = asyncio.run(asyncio.wait_for(visitor(), 60))
    assert (refused["code"], code) == ("token_used", 4409)
