"""How long a visitor waits for a call to start, stage by stage, on each server and RTT.

Two ways to start, timed from the client for ``--calls`` text calls one after the other:

* ``socket``, what the widget does: its panel opened a start socket beforehand (not on
  the visitor's clock), and picking a mode sends ``start``; ``ready`` comes back on it
  once the relay has created the call, opened VoiceHub's socket and joined. One round trip.
* ``http``, what a site that creates calls over HTTP does: ``POST .../calls`` (201 with
  the relay socket's URL), then open that socket, then wait for ``ready``.

On Daphne and on Uvicorn (uvloop), each directly and behind a proxy that delays every byte
by half of ``--rtt`` milliseconds each way, as a visitor's network would. VoiceHub is the
lean loopback upstream (benchmarks/loopback_upstream.py), so what is measured is the app's
own time. Prints the median and p95 of each stage.

Run with ``make bench-start`` or ``python benchmarks/start.py --calls 30 --rtt 100``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import wire  # noqa: E402
from benchmarks.load import BENCH_AGENT  # noqa: E402
from tests.deployment import APP, Servers, site_environment, uvicorn_command  # noqa: E402
from tests.servers import free_port  # noqa: E402

STAGES = ("create", "open", "ready", "total")


@dataclass
class Stages:
    times: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})

    def add(self, create: float, opened: float, ready: float) -> None:
        for stage, value in zip(
            STAGES, (create, opened, ready, create + opened + ready), strict=True
        ):
            self.times[stage].append(value * 1000)

    def row(self) -> str:
        cells = []
        for stage in STAGES:
            values = sorted(self.times[stage])
            p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
            cells.append(f"{statistics.median(values):7.1f} {p95:7.1f}")
        return "  ".join(cells)


class DelayProxy:
    """A TCP proxy that holds every chunk ``delay`` seconds each way, in order."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> DelayProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._pipes:
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        pipes = {
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        }
        self._pipes |= pipes
        await asyncio.gather(*pipes, return_exceptions=True)
        self._pipes -= pipes

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not chunk:
                    writer.close()
                    return
                writer.write(chunk)

        delivering = asyncio.create_task(deliver())
        try:
            while chunk := await reader.read(65536):
                queue.put_nowait((loop.time() + self.delay, chunk))
            queue.put_nowait((loop.time() + self.delay, b""))
            await delivering
        finally:
            delivering.cancel()


class Http:
    """A keep-alive HTTP/1.1 client for one origin, as a browser's is."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post_json(self, path: str, body: dict[str, object], origin: str) -> dict:
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        data = json.dumps(body).encode()
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nOrigin: {origin}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        status = int(head.split(b" ", 2)[1])
        answer = json.loads(await reader.readexactly(length))
        if status != 201:
            raise RuntimeError(f"create-call answered {status}: {answer}")
        return answer

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()


async def one_socket_start(http: Http, port: int) -> tuple[float, float, float]:
    """The widget's way: ``create`` is 0 (the socket was opened with the panel), ``open``
    is 0, ``ready`` is from the start frame to ready."""
    origin = f"http://127.0.0.1:{port}"
    socket = await wire.connect(f"ws://127.0.0.1:{port}/ws/webcall/start/bench/", origin=origin)
    started = time.perf_counter()
    socket.send_text(json.dumps({"type": "start", "mode": "text"}))
    while json.loads(await socket.recv_text()).get("type") != "ready":
        pass
    ready = time.perf_counter()
    socket.send_text(json.dumps({"type": "end"}))
    await socket.close()
    return 0.0, 0.0, ready - started


async def one_start(http: Http, port: int) -> tuple[float, float, float]:
    origin = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    created = await http.post_json("/webcall/agents/bench/calls", {"mode": "text"}, origin)
    posted = time.perf_counter()
    parts = urlsplit(created["socket"])
    url = urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))
    socket = await wire.connect(url, origin=origin)
    opened = time.perf_counter()
    while json.loads(await socket.recv_text()).get("type") != "ready":
        pass
    ready = time.perf_counter()
    socket.send_text(json.dumps({"type": "end"}))
    await socket.close()
    return posted - started, opened - posted, ready - opened


async def measure(port: int, calls: int, how: str) -> Stages:
    stages = Stages()
    http = Http(port)
    one = one_socket_start if how == "socket" else one_start
    try:
        for index in range(calls + 2):
            create, opened, ready = await one(http, port)
            if index >= 2:  # the first starts warm the process up
                stages.add(create, opened, ready)
    finally:
        http.close()
    return stages


async def through(port: int, rtt_ms: float, run: Callable[[int], Awaitable[Stages]]) -> Stages:
    if not rtt_ms:
        return await run(port)
    async with DelayProxy(port, rtt_ms / 2000) as proxy:
        return await run(proxy.port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=30, help="starts measured per row")
    parser.add_argument("--rtt", type=float, nargs="+", default=[0, 100], help="milliseconds")
    parser.add_argument("--servers", nargs="+", default=["daphne", "uvicorn"])
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="webcall-start-"))
    http_port, ws_port = free_port(), free_port()
    env = site_environment(workdir, f"http://127.0.0.1:{http_port}", None, setup=BENCH_AGENT)
    servers = Servers(workdir, env)
    try:
        upstream = [sys.executable, "benchmarks/loopback_upstream.py"]
        upstream += ["--http-port", str(http_port), "--ws-port", str(ws_port)]
        servers.start("upstream", upstream, ws_port)
        ports = {name: start_server(servers, name) for name in args.servers}
        print(
            f"{args.calls} text calls started one after the other; milliseconds, "
            "median and p95, as the client saw them."
        )
        print(
            f"{'server':<8} {'start':<6} {'RTT':>4}  "
            + "  ".join(f"{stage + ' p50':>7} {'p95':>7}" for stage in STAGES)
        )
        for name, port in ports.items():
            for rtt in args.rtt:
                for how in ("socket", "http"):
                    run = lambda p, how=how: measure(p, args.calls, how)  # noqa: E731
                    with asyncio.Runner(loop_factory=wire.new_event_loop) as runner:
                        stages = runner.run(through(port, rtt, run))
                    print(f"{name:<8} {how:<6} {rtt:>4g}  {stages.row()}")
    finally:
        servers.stop_all()


def start_server(servers: Servers, name: str) -> int:
    port = free_port()
    if name == "daphne":
        command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), APP]
    else:
        command = uvicorn_command(port, "--loop", "uvloop")
    servers.start(name, command, port)
    return port


if __name__ == "__main__":
    main()
