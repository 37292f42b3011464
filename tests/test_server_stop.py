"""A server that stops or reloads ends its live calls cleanly, however the app is served.

Each test serves the tests' site in a process of its own (Daphne, Uvicorn, or Django's
runserver with its autoreloader, which is what ``make run`` uses), holds a call with the
sandbox, stops or reloads the server mid-call, and checks all three sides: the visitor is
told (``ended``, then a close code that says "restarting"), VoiceHub's channels are left,
and the call is recorded ``relay-stopped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import requests
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from tests.servers import free_port, manage, post_create_call, wait_for_port
from webcall_widget.models import Call
from webcall_widget.relay.protocol import CloseCode

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_FILE = ROOT / "tests" / "settings_site.py"

# Not transactional: on PostgreSQL the site processes share the test database, and a
# transactional test's flush would delete the module's agent after the first test.
pytestmark = [pytest.mark.xdist_group("test_server_stop"), pytest.mark.django_db, pytest.mark.slow]

RESTARTING = {CloseCode.RESTARTING, CloseCode.RESTARTING_4XXX}


class Site:
    """The site's environment, database and agent, shared by the tests of this module."""

    def __init__(self, env: dict[str, str], sqlite_file: Path | None, log: IO[bytes]) -> None:
        self.env = env
        self.sqlite_file = sqlite_file
        self.log = log  # the servers' stderr: /dev/null, or SITE_LOG=path to read it

    def manage(self, *args: str) -> str:
        return manage(self.env, *args, cwd=ROOT)

    def serve(self, *command: str, port: int) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, *command],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,  # the autoreloader's two processes are one group
        )
        try:
            wait_for_port(port, process, command[1])
        except BaseException:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        return process

    def call_row(self, call_id: str) -> tuple[str, str, str]:
        """The call's status, end reason and VoiceHub call id."""
        if self.sqlite_file is None:
            fields = ("status", "end_reason", "voicehub_call_id")
            status, reason, voicehub_id = Call.objects.values_list(*fields).get(pk=call_id)
            return status, reason, voicehub_id
        with sqlite3.connect(self.sqlite_file) as db:
            return db.execute(
                "SELECT status, end_reason, voicehub_call_id FROM webcall_widget_call "
                "WHERE id = ?",
                (uuid.UUID(call_id).hex,),
            ).fetchone()


@pytest.fixture(scope="module")
def site(sandbox_server, tmp_path_factory, django_db_setup, django_db_blocker) -> Iterator[Site]:
    with contextlib.ExitStack() as stack:
        yield from _site(stack, sandbox_server, tmp_path_factory, django_db_blocker)


def _site(stack, sandbox_server, tmp_path_factory, django_db_blocker) -> Iterator[Site]:
    from django.core.management import call_command
    from django.db import connection

    sqlite_file = None
    if connection.vendor == "sqlite":
        sqlite_file = tmp_path_factory.mktemp("site") / "site.sqlite3"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.settings_site",
        "SITE_DATABASE": str(sqlite_file or connection.settings_dict["NAME"]),
        "SITE_SANDBOX": sandbox_server.url,
    }
    log = stack.enter_context(open(os.environ.get("SITE_LOG", os.devnull), "ab"))  # noqa: SIM115
    site = Site(env, sqlite_file, log)
    if sqlite_file is not None:
        site.manage("migrate", "--noinput", "-v0")
    site.manage(
        "shell",
        "-v0",
        "-c",
        "from webcall_widget.models import Agent; Agent.objects.create(name='Stop', "
        "slug='stop', voicehub_agent_id='echo-agent', api_key='sandbox-key', "
        "modes=['text'], default_mode='text', max_concurrent_calls=100)",
    )
    yield site
    if sqlite_file is None:
        with django_db_blocker.unblock():
            call_command("flush", interactive=False, verbosity=0)


def stop_mid_call(url: str, stop: Any) -> tuple[str, list[dict[str, Any]], int | None]:
    """Hold a call on the site at ``url``, run ``stop()`` once it is live; the call's id,
    every frame the visitor received, and the close code."""
    response = post_create_call(url, "stop", **{"X-Forwarded-For": "203.0.113.7"})
    assert response.status_code == 201, response.text

    async def visitor() -> tuple[list[dict[str, Any]], int | None]:
        frames: list[dict[str, Any]] = []
        async with connect(response.json()["socket"], origin=Origin(url)) as ws:
            frames.append(json.loads(await ws.recv()))
            assert frames[0]["type"] == "ready"
            await asyncio.to_thread(stop)
            with contextlib.suppress(ConnectionClosed):
                async for frame in ws:
                    frames.append(json.loads(frame))
        return frames, ws.close_code

    frames, code = asyncio.run(asyncio.wait_for(visitor(), 30))
    return response.json()["call"], frames, code


def assert_ended_cleanly(site: Site, sandbox, call_id: str, frames: list[dict[str, Any]]) -> None:
    assert frames[-1] == {"type": "ended", "reason": "relay-stopped"}
    assert any(f["type"] == "error" and f["code"] == "relay_stopped" for f in frames)
    assert_recorded_and_left(site, sandbox, call_id)


def assert_recorded_and_left(site: Site, sandbox, call_id: str) -> None:
    status, reason, voicehub_id = site.call_row(call_id)
    assert (status, reason) == ("ended", "relay-stopped")
    left = {r.call_id for r in sandbox.state.records if r.event == "channel.leave"}
    assert voicehub_id in left, "the call's channels were not left upstream"


def test_daphne_stopping_ends_live_calls_and_tells_the_visitor(site, sandbox):
    port = free_port()
    server = site.serve(
        "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "tests.asgi:application", port=port
    )
    try:
        call_id, frames, code = stop_mid_call(
            f"http://127.0.0.1:{port}", lambda: server.send_signal(signal.SIGTERM)
        )
        server.wait(15)
    finally:
        os.killpg(server.pid, signal.SIGKILL) if server.poll() is None else None
    assert code in RESTARTING
    assert_ended_cleanly(site, sandbox, call_id, frames)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_uvicorn_stopping_ends_live_calls_with_1012(site, sandbox, loop):
    port = free_port()
    server = site.serve(
        "-m",
        "uvicorn",
        "--loop",
        loop,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "off",
        "tests.asgi:application",
        port=port,
    )
    try:
        call_id, _, code = stop_mid_call(
            f"http://127.0.0.1:{port}", lambda: server.send_signal(signal.SIGTERM)
        )
        server.wait(15)
    finally:
        os.killpg(server.pid, signal.SIGKILL) if server.poll() is None else None
    # Uvicorn closes every socket itself, with 1012, before the application hears of it.
    assert code == CloseCode.RESTARTING
    deadline = time.monotonic() + 10
    while site.call_row(call_id)[0] == "live" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert_recorded_and_left(site, sandbox, call_id)


def answering(url: str, seconds: float = 15) -> None:
    """Wait until the server answers HTTP: the autoreloader may restart its child once
    while it starts (a file the tests' other workers touch), and a port that listens
    says only that a process bound it."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            requests.get(url + "/", timeout=2)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.parametrize("how", ["a source file changes", "ctrl-c"])
def test_runserver_with_its_autoreloader_ends_live_calls_and_tells_the_visitor(site, sandbox, how):
    port = free_port()
    server = site.serve("-m", "django", "runserver", f"127.0.0.1:{port}", port=port)

    def stop() -> None:
        if how == "ctrl-c":
            os.killpg(server.pid, signal.SIGINT)  # a terminal sends it to the whole group
        else:
            os.utime(SETTINGS_FILE)

    try:
        time.sleep(1.5)  # the reloader's first look at the files' times
        answering(f"http://127.0.0.1:{port}")
        call_id, frames, code = stop_mid_call(f"http://127.0.0.1:{port}", stop)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)
    assert code in RESTARTING
    assert_ended_cleanly(site, sandbox, call_id, frames)
