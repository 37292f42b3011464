"""Two site processes behind one Redis: limits and control messages span processes.

Each process is Daphne serving the tests' ASGI application with tests/settings_redis.py:
the Redis cache (rate limits) and channels_redis (a group per call), one shared database.
A Redis server is used if one answers on 127.0.0.1:6379; otherwise the tests start their
own (redis-server from Debian, installed by scripts/install-system-deps).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from websockets.asyncio.client import connect

from tests.servers import free_port, post_create_call, start_daphne, wait_for_port

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.redis


def redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if redis_answers(6379):
        yield "redis://127.0.0.1:6379/0"
        return
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, server, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)


class Site:
    def __init__(self, env: dict[str, str], database: Path) -> None:
        self.env = env
        self.database = database
        self.urls: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "django", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def start(self) -> str:
        process, url = start_daphne("tests.asgi:application", cwd=ROOT, env=self.env)
        self.processes.append(process)
        self.urls.append(url)
        return url

    def call_row(self, call_id: str) -> tuple[str, str]:
        with sqlite3.connect(self.database) as db:
            return db.execute(
                "SELECT status, end_reason FROM webcall_widget_call WHERE id = ?",
                (uuid.UUID(call_id).hex,),
            ).fetchone()

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(10)


@pytest.fixture(scope="module")
def two_processes(redis_url, sandbox_server, tmp_path_factory) -> Iterator[Site]:
    database = tmp_path_factory.mktemp("multi") / "site.sqlite3"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.settings_redis",
        "MULTI_DATABASE": str(database),
        "MULTI_REDIS": redis_url,
        "MULTI_PREFIX": f"webcall-test-{uuid.uuid4().hex[:8]}",
        "MULTI_SANDBOX": sandbox_server.url,
    }
    site = Site(env, database)
    site.manage("migrate", "--noinput", "-v0")
    site.manage(
        "shell",
        "-v0",
        "-c",
        "from webcall_widget.models import Agent; Agent.objects.create(name='Multi', "
        "slug='multi', voicehub_agent_id='echo-agent', api_key='sandbox-key', "
        "modes=['text'], default_mode='text', max_concurrent_calls=100)",
    )
    site.start()
    site.start()
    yield site
    site.stop()


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

    async def visitor() -> tuple[list[dict], int]:
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
                    f"from webcall_widget.relay.control import end_call; end_call('{call_id}')",
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
