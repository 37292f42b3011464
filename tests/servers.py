"""Real servers for tests: an ASGI app served by uvicorn on 127.0.0.1, port 0, in a thread.

A thread (rather than the test's own event loop) lets synchronous tests, the Django test
client and Playwright all talk to the same server over real sockets.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests
import uvicorn
from websockets.asyncio.client import connect


class ServerThread:
    def __init__(
        self, app: Any, *, name: str = "test-server", receive_buffer: int | None = None
    ) -> None:
        """``receive_buffer``: the kernel's receive buffer of every accepted socket, in
        bytes; a small one makes a server that stops reading felt at once."""
        self.app = app
        self.name = name
        self.receive_buffer = receive_buffer
        self.port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            ws="websockets-sansio",
            ws_max_size=4 * 1024 * 1024,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        if not self._started.wait(10) or self._error is not None:
            raise RuntimeError(f"{self.name} did not start") from self._error
        return self

    def _run(self) -> None:
        assert self._server is not None
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start() or left for stop()
            self._error = exc
            self._started.set()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    async def _serve(self) -> None:
        assert self._server is not None
        server = self._server
        task = asyncio.create_task(server.serve(sockets=self._listening()))
        while not server.started:
            if task.done():
                await task
                return
            await asyncio.sleep(0.005)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        self._started.set()
        await task
        # Let the tasks of connections closed during shutdown finish.
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _listening(self) -> list[socket.socket] | None:
        if self.receive_buffer is None:
            return None
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
        sock.bind(("127.0.0.1", 0))
        return [sock]

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def post_create_call(
    site_url: str, slug: str, mode: str = "text", **headers: str
) -> requests.Response:
    """Create a call over real HTTP, from a page on ``site_url`` (same origin)."""
    return requests.post(
        f"{site_url}/webcall/agents/{slug}/calls",
        json={"mode": mode},
        headers={"Origin": site_url, **headers},
        timeout=10,
    )


def say_and_hang_up(socket_url: str, origin: str, text: str) -> list[dict[str, Any]]:
    """Over a real WebSocket: wait for ``ready`` and the greeting, say ``text``, wait for
    the agent's final answer, then end the call. Every frame received, in order."""

    async def converse() -> list[dict[str, Any]]:
        frames = []
        async with connect(socket_url, origin=origin) as ws:  # type: ignore[arg-type]
            frames.append(json.loads(await ws.recv()))  # ready
            frames.append(json.loads(await ws.recv()))  # greeting
            await ws.send(json.dumps({"type": "text", "text": text}))
            while not (
                frames[-1].get("role") == "agent"
                and frames[-1].get("final")
                and frames[-1]["text"].startswith("You said")
            ):
                frames.append(json.loads(await ws.recv()))
            await ws.send(json.dumps({"type": "end"}))
            frames.append(json.loads(await ws.recv()))
            await ws.wait_closed()
            assert ws.close_code == 1000
        return frames

    return asyncio.run(asyncio.wait_for(converse(), 15))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


def start_daphne(
    application: str, *, cwd: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    """A site served by Daphne in its own process on a free port: the process and its URL,
    once the port answers. The caller terminates it."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), application],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process, "daphne")
    except BaseException:
        process.kill()
        process.wait(10)
        raise
    return process, f"http://127.0.0.1:{port}"


def manage(env: dict[str, str], *args: str, cwd: Path) -> str:
    """``django-admin <args>`` in a process of its own with ``env``; its output. Fails the
    test with the command's error output when it fails."""
    result = subprocess.run(
        [sys.executable, "-m", "django", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
