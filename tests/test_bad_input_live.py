"""Bad input over real sockets, on the servers a site runs: never a 500, always a code.

The demo site (demo/settings.py, demo/asgi.py, the sandbox mounted on it) is served by
Daphne twice, each over its own SQLite file: by the ``daphne`` command with Daphne's own
defaults, as a site deploys it, and by ``manage.py runserver`` as ``make run`` serves it.
The demo's cache is its process's memory, so two processes over one database would each
find the other's lease missing and end its calls as ``relay-lost``. Uvicorn
serves the tests' ASGI application in-process (tests/servers.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.servers import ServerThread, free_port, post_create_call, wait_for_port
from webcall_widget.strings import visitor_message

# Its tests share servers started once for the module: one xdist worker runs them all.
pytestmark = pytest.mark.xdist_group("test_bad_input_live")

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024


@dataclass
class Site:
    url: str
    database: Path | None = None

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    def call_row(self, call_id: str, *, wait: float = 10) -> tuple[str, str, str]:
        """The call's (status, end reason, error code), once the relay has recorded its end
        (or after ``wait`` seconds)."""
        assert self.database is not None
        deadline = time.monotonic() + wait
        while True:
            with sqlite3.connect(self.database) as db:
                row = db.execute(
                    "SELECT status, end_reason, error_code FROM webcall_widget_call WHERE id = ?",
                    (uuid.UUID(call_id).hex,),
                ).fetchone()
            if row[0] in ("ended", "failed") or time.monotonic() > deadline:
                return row
            time.sleep(0.05)


def demo_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a demo site over a new, migrated and seeded SQLite file."""
    database = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "demo.settings",
        "DEMO_DATABASE": str(database),
    }
    for command in (["migrate", "--noinput", "-v0"], ["seed_demo"]):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
    return env


def _serve(command: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, process, command[2])
    except BaseException:
        process.kill()
        process.wait(10)
        raise
    return process


@pytest.fixture(scope="module")
def daphne_site(tmp_path_factory) -> Iterator[Site]:
    """``daphne demo.asgi:application``: Daphne's defaults (1 MiB websocket messages)."""
    env = demo_env(tmp_path_factory)
    port = free_port()
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    process = _serve([*command, "demo.asgi:application"], port, env)
    yield Site(f"http://127.0.0.1:{port}", Path(env["DEMO_DATABASE"]))
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def runserver_site(tmp_path_factory) -> Iterator[Site]:
    """``manage.py runserver``, Daphne's, with the demo's settings (4 MiB messages)."""
    env = demo_env(tmp_path_factory)
    port = free_port()
    command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    process = _serve(command, port, env)
    yield Site(f"http://127.0.0.1:{port}", Path(env["DEMO_DATABASE"]))
    process.terminate()
    process.wait(10)


def new_call(site: Site, slug: str = "echo") -> tuple[str, str]:
    response = post_create_call(site.url, slug, "TextAudio")
    assert response.status_code == 201, response.text
    return response.json()["socket"], response.json()["call"]


def converse(socket_url: str, origin: str, *frames: str | bytes) -> tuple[int | None, list]:
    """Wait for ``ready``, send ``frames``, read until the socket closes: the close code
    and the JSON frames received after ``ready``."""

    async def run() -> tuple[int | None, list]:
        received = []
        async with connect(socket_url, origin=origin, max_size=None) as ws:  # type: ignore[arg-type]
            assert json.loads(await ws.recv())["type"] == "ready"
            for frame in frames:
                await ws.send(frame)
            try:
                async for message in ws:
                    if isinstance(message, str):
                        received.append(json.loads(message))
            except ConnectionClosed:
                pass
            return ws.close_code, received

    return asyncio.run(asyncio.wait_for(run(), 20))


def open_path(site: Site, path: str) -> tuple[int | None, list]:
    async def run() -> tuple[int | None, list]:
        received = []
        async with connect(site.ws_url + path, origin=site.url) as ws:  # type: ignore[arg-type]
            try:
                async for message in ws:
                    received.append(json.loads(message))
            except ConnectionClosed:
                pass
            return ws.close_code, received

    return asyncio.run(asyncio.wait_for(run(), 10))


# websocket paths


@pytest.mark.parametrize("path", ["/ws/", "/no/such/socket/", "/ws/webcall/", "/ws/webcall/a/b/"])
def test_a_websocket_path_no_route_serves_closes_with_4404(daphne_site, path):
    close_code, frames = open_path(daphne_site, path)
    assert close_code == 4404
    assert frames == [
        {"type": "error", "code": "unknown_call", "message": visitor_message("unknown_call")}
    ]


# frames the relay cannot parse


def test_a_deeply_nested_frame_closes_with_4400_and_is_recorded_as_malformed(daphne_site):
    socket_url, call_id = new_call(daphne_site)
    close_code, frames = converse(socket_url, daphne_site.url, "[" * 10_000)
    assert close_code == 4400
    assert {"type": "ended", "reason": "malformed-frame"} in frames
    assert daphne_site.call_row(call_id)[1:] == ("malformed-frame", "malformed_frame")


# frame size: MAX_FRAME_BYTES (16 KiB) is enforced by the relay below the server's limit


def test_a_frame_over_max_frame_bytes_closes_with_4413_on_daphne(daphne_site):
    socket_url, call_id = new_call(daphne_site)
    close_code, frames = converse(socket_url, daphne_site.url, b"\0" * (512 * 1024))
    assert close_code == 4413
    assert frames[0]["code"] == "frame_too_large"
    assert daphne_site.call_row(call_id)[1:] == ("frame-too-large", "frame_too_large")


def test_a_frame_over_daphnes_own_limit_is_dropped_by_daphne_before_the_relay(daphne_site):
    """Daphne (Autobahn) fails a websocket message over --websocket-max-message-size (1 MiB
    by default) by dropping the TCP connection: the relay never sees the frame, and the
    browser sees 1006, as when a network drops. The relay treats it as one (the call waits
    to be resumed, or ends as visitor-disconnected); it cannot tell it was a frame."""
    socket_url, call_id = new_call(daphne_site)
    close_code, _ = converse(socket_url, daphne_site.url, b"\0" * (2 * MiB))
    assert close_code == 1006
    status, reason, _ = daphne_site.call_row(call_id, wait=1)
    assert (status, reason) in {("live", ""), ("ended", "visitor-disconnected")}


def test_a_2_mib_frame_closes_with_4413_under_the_demos_runserver(runserver_site):
    socket_url, call_id = new_call(runserver_site)
    close_code, _ = converse(socket_url, runserver_site.url, b"\0" * (2 * MiB))
    assert close_code == 4413
    assert runserver_site.call_row(call_id)[1:] == ("frame-too-large", "frame_too_large")


@pytest.mark.django_db(transaction=True)
def test_a_2_mib_frame_closes_with_4413_on_uvicorn(settings, agent):
    settings.WEBCALL_WIDGET = {"SANDBOX": {"ENABLED": True}}
    from tests.asgi import application
    from webcall_widget.models import Call

    with ServerThread(application, name="uvicorn-site") as server:  # --ws-max-size 4 MiB
        site = Site(server.url)
        socket_url, call_id = new_call(site, agent.slug)
        close_code, _ = converse(socket_url, site.url, b"\0" * (2 * MiB))
    assert close_code == 4413
    call = Call.objects.get(pk=call_id)
    assert (call.end_reason, call.error_code) == ("frame-too-large", "frame_too_large")


@pytest.mark.django_db(transaction=True)
def test_a_frame_over_uvicorns_own_limit_closes_1009_and_is_recorded_as_too_large(settings, agent):
    settings.WEBCALL_WIDGET = {"SANDBOX": {"ENABLED": True}}
    from tests.asgi import application
    from webcall_widget.models import Call

    with ServerThread(application, name="uvicorn-site") as server:  # --ws-max-size 4 MiB
        site = Site(server.url)
        socket_url, call_id = new_call(site, agent.slug)
        close_code, _ = converse(socket_url, site.url, b"\0" * (5 * MiB))
        assert close_code == 1009  # Uvicorn's "message too big", sent before the relay sees it
        time.sleep(0.5)
    call = Call.objects.get(pk=call_id)
    assert (call.end_reason, call.error_code) == ("frame-too-large", "frame_too_large")


# the demo's pages


@pytest.mark.parametrize("page", ["/", "/csp/", "/plain/"])
@pytest.mark.parametrize("agent", ["not a slug", "../admin", "\u2019", ""])
def test_a_demo_page_for_an_agent_that_is_not_a_slug_is_a_400_that_says_so(
    runserver_site, page, agent
):
    response = requests.get(f"{runserver_site.url}{page}?agent={quote(agent)}", timeout=10)
    assert response.status_code == 400
    assert "must be an agent's slug" in response.text


def test_a_demo_page_for_an_agent_slug_renders(runserver_site):
    response = requests.get(f"{runserver_site.url}/?agent=echo", timeout=10)
    assert response.status_code == 200
    assert 'data-agent="echo"' in response.text
