"""A server that stops or reloads loses no conversation, however the app is served.

Each test serves the tests' site in a process of its own (Daphne, Uvicorn, or Django's
runserver with its autoreloader, which is what ``make run`` uses), holds a call with the
sandbox and stops or reloads the server mid-call:

* where VoiceHub lets a second socket join a call (``UPSTREAM.REJOIN`` "auto", the
  sandbox's default), the visitor is sent on (4013, no ``ended``), the call is not ended,
  and once a server is back the visitor's resume takes the call over and it goes on;
* where it does not ("never"), the call runs on while the process drains, then ends as a
  server stop: the visitor is told (``ended``, then a close code that says "restarting"),
  VoiceHub's channels are left, and the call is recorded ``relay-stopped``.
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
from collections.abc import Callable, Iterator
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
from webcall_widget.seams.autoreloader import children

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_FILE = ROOT / "tests" / "settings_site.py"

# Not transactional: on PostgreSQL the site processes share the test database, and a
# transactional test's flush would delete the module's agent after the first test.
pytestmark = [
    pytest.mark.xdist_group("test_graceful_stop"),
    pytest.mark.django_db,
    pytest.mark.slow,
]

RESTARTING = {CloseCode.RESTARTING, CloseCode.RESTARTING_4XXX}


class Site:
    """The site's environment, database and agent, shared by the tests of this module."""

    def __init__(self, env: dict[str, str], sqlite_file: Path | None, log: IO[bytes]) -> None:
        self.env = env
        self.sqlite_file = sqlite_file
        self.log = log  # the servers' stderr: a file of the module's, or SITE_LOG=path

    def manage(self, *args: str) -> str:
        return manage(self.env, *args, cwd=ROOT)

    def serve(self, *command: str, port: int, rejoin: str = "auto") -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, *command],
            cwd=ROOT,
            env={**self.env, "SITE_REJOIN": rejoin, "SITE_DRAIN_SECONDS": "1"},
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
    log_path = os.environ.get("SITE_LOG") or tmp_path_factory.mktemp("site-log") / "site.log"
    log = stack.enter_context(open(log_path, "ab"))  # noqa: SIM115
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


SERVERS: dict[str, Callable[[int], list[str]]] = {
    "daphne": lambda port: [
        "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "tests.asgi:application"
    ],
    "uvicorn": lambda port: [
        "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off",
        "--ws", "websockets-sansio", "tests.asgi:application",
    ],
    "uvicorn-uvloop": lambda port: [
        "-m", "uvicorn", "--loop", "uvloop", "--host", "127.0.0.1", "--port", str(port),
        "--lifespan", "off", "--ws", "websockets-sansio", "tests.asgi:application",
    ],
    "runserver": lambda port: ["-m", "django", "runserver", f"127.0.0.1:{port}"],
}  # fmt: skip


class Visitor:
    """A visitor on the site at ``url``: a call, its frames and its resume token."""

    def __init__(self, url: str) -> None:
        self.url = url
        response = post_create_call(url, "stop", **{"X-Forwarded-For": "203.0.113.7"})
        assert response.status_code == 201, response.text
        self.call_id: str = response.json()["call"]
        self.socket_url: str = response.json()["socket"]
        self.frames: list[dict[str, Any]] = []
        self.shown: list[str] = []  # the conversation as the visitor's page showed it
        self.token = ""
        self.close_code: int | None = None

    def talk_then(self, stop: Callable[[], None]) -> None:
        """Say something, hear the answer, then ``stop()`` the server and read to the end."""

        async def visit() -> None:
            async with connect(self.socket_url, origin=Origin(self.url)) as ws:
                ready = json.loads(await ws.recv())
                assert ready["type"] == "ready", ready
                self.token = ready["resume"]["token"]
                await ws.send(json.dumps({"type": "text", "text": "before", "id": "w1"}))
                await self._until(ws, "You said: before", self.shown)
                await asyncio.to_thread(stop)
                with contextlib.suppress(ConnectionClosed):
                    async for frame in ws:
                        self.frames.append(json.loads(frame))
            self.close_code = ws.close_code

        asyncio.run(asyncio.wait_for(visit(), 30))

    def come_back(self) -> list[str]:
        """Resume on the site (the server serving again), say something more, hang up; the
        conversation the visitor was given back."""

        async def visit() -> list[str]:
            resume_url = self.socket_url.rsplit("/", 2)[0] + f"/{self.token}/"
            async with connect(resume_url, origin=Origin(self.url)) as ws:
                ready = json.loads(await ws.recv())
                assert ready["type"] == "ready" and ready["resumed"], ready
                replay = json.loads(await ws.recv())
                await ws.send(json.dumps({"type": "text", "text": "after", "id": "w2"}))
                await self._until(ws, "You said: after")
                await ws.send(json.dumps({"type": "end"}))
                await self._until(ws, None)
            return [m["text"] for m in replay["messages"]]

        return asyncio.run(asyncio.wait_for(visit(), 30))

    @staticmethod
    async def _until(ws: Any, text: str | None, shown: list[str] | None = None) -> None:
        """Read up to the message ``text`` (or, for None, ``ended``), adding the messages
        read to ``shown``."""
        async for raw in ws:
            if isinstance(raw, bytes):
                continue
            frame = json.loads(raw)
            if shown is not None and frame["type"] == "message" and frame["final"]:
                shown.append(frame["text"])
            if (text is None and frame["type"] == "ended") or frame.get("text") == text:
                return


def assert_ended_cleanly(site: Site, sandbox, visitor: Visitor) -> None:
    assert visitor.frames[-1] == {"type": "ended", "reason": "relay-stopped"}
    assert any(f["type"] == "error" and f["code"] == "relay_stopped" for f in visitor.frames)
    assert visitor.close_code in RESTARTING
    assert_recorded_and_left(site, sandbox, visitor.call_id)


def assert_recorded_and_left(site: Site, sandbox, call_id: str) -> None:
    deadline = time.monotonic() + 10
    while site.call_row(call_id)[0] == "live" and time.monotonic() < deadline:
        time.sleep(0.1)
    status, reason, voicehub_id = site.call_row(call_id)
    assert (status, reason) == ("ended", "relay-stopped")
    left = {r.call_id for r in sandbox.state.records if r.event == "channel.leave"}
    assert voicehub_id in left, "the call's channels were not left upstream"


def assert_sent_on(site: Site, sandbox, visitor: Visitor) -> None:
    """The visitor was told to resume, and the call is neither ended nor left upstream."""
    assert visitor.close_code == CloseCode.MOVING
    assert not any(f["type"] == "ended" for f in visitor.frames)
    status, _, voicehub_id = site.call_row(visitor.call_id)
    assert status == "live"
    left = {r.call_id for r in sandbox.state.records if r.event == "channel.leave"}
    assert voicehub_id not in left


def assert_goes_on(site: Site, visitor: Visitor) -> None:
    replay = visitor.come_back()
    # The agent's greeting may come before or after a quick visitor's first words: the
    # replay gives back the order the page showed.
    assert replay == visitor.shown
    status, reason, _ = site.call_row(visitor.call_id)
    assert (status, reason) == ("ended", "visitor-ended")


def stops_on_its_own(site: Site, process: subprocess.Popen[bytes]) -> None:
    """The server exits within 20 s; otherwise the test fails with what each of its
    processes was doing (tests/settings_site.py dumps every thread's stack on SIGUSR1)
    and the end of its log."""
    try:
        process.wait(20)
        return
    except subprocess.TimeoutExpired:
        pass
    for pid in [process.pid, *children(process.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)
    time.sleep(1.0)
    site.log.flush()
    log = Path(site.log.name).read_bytes()[-8000:].decode(errors="replace")
    pytest.fail(f"The server did not stop within 20 s. Its threads, and its log:\n{log}")


@contextlib.contextmanager
def serving(site: Site, server: str, port: int, rejoin: str) -> Iterator[subprocess.Popen[bytes]]:
    process = site.serve(*SERVERS[server](port), port=port, rejoin=rejoin)
    try:
        if server == "runserver":
            time.sleep(1.5)  # the reloader's first look at the files' times
            answering(f"http://127.0.0.1:{port}")
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@pytest.mark.parametrize("server", ["daphne", "uvicorn", "uvicorn-uvloop", "runserver"])
def test_a_server_told_to_stop_sends_visitors_on_and_the_next_one_takes_their_calls_over(
    site, sandbox, server
):
    """A deploy with one process: SIGTERM (to runserver's autoreloader parent, as ``kill``
    or systemd sends it), then the server started again."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(site, server, port, "auto") as process:
        visitor = Visitor(url)
        visitor.talk_then(lambda: process.send_signal(signal.SIGTERM))
        stops_on_its_own(site, process)  # once drained
    assert_sent_on(site, sandbox, visitor)
    with serving(site, server, port, "auto"):
        assert_goes_on(site, visitor)


@pytest.mark.parametrize("server", ["daphne", "uvicorn", "uvicorn-uvloop", "runserver"])
def test_without_rejoins_a_server_told_to_stop_ends_live_calls_and_tells_the_visitor(
    site, sandbox, server
):
    port = free_port()
    with serving(site, server, port, "never") as process:
        visitor = Visitor(f"http://127.0.0.1:{port}")
        visitor.talk_then(lambda: process.send_signal(signal.SIGTERM))
        stops_on_its_own(site, process)
    assert_ended_cleanly(site, sandbox, visitor)


def test_ctrl_c_to_runserver_and_its_autoreloader_stops_it_the_same_way(site, sandbox):
    """A terminal sends SIGINT to the whole process group: parent and child alike."""
    port = free_port()
    with serving(site, "runserver", port, "never") as process:
        visitor = Visitor(f"http://127.0.0.1:{port}")
        visitor.talk_then(lambda: os.killpg(process.pid, signal.SIGINT))
        stops_on_its_own(site, process)
    assert_ended_cleanly(site, sandbox, visitor)


def test_a_reload_on_a_source_change_hands_the_call_to_the_reloaded_server(site, sandbox):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(site, "runserver", port, "auto"):
        visitor = Visitor(url)
        visitor.talk_then(lambda: os.utime(SETTINGS_FILE))
        assert_sent_on(site, sandbox, visitor)
        time.sleep(1.5)
        answering(url)
        assert_goes_on(site, visitor)


def answering(url: str, seconds: float = 15) -> None:
    """Wait until the server answers HTTP: a port that listens says only that a process
    bound it."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            requests.get(url + "/", timeout=2)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
