"""What the readiness endpoint costs: requests/s and latency under load, and the CPU that
probes polling it take from the process.

One Uvicorn process serves the test site with the production dependencies (PostgreSQL,
a fresh database; Redis for the cache and the channel layer), as ``make bench-load``'s
``uvicorn x2`` does. Then:

1. ``--clients`` keep-alive connections ask ``/webcall/health/ready`` (then
   ``/health/live``, then a page that does not exist, which costs what any request
   through Django costs) as fast as they can for ``--seconds``: requests/s, p50, p99;
2. ``--probes`` probes each ask ``/health/ready`` once a second on a new connection, as
   kubelet and nginx do, for ``--idle-seconds``: the process's CPU then, against the same
   time with no probe at all.

Run with ``make bench-health`` or ``python benchmarks/health.py``. Nothing is asserted:
the figures are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.load import cpu_seconds, percentile  # noqa: E402
from tests.deployment import (  # noqa: E402
    Servers,
    fresh_database,
    site_environment,
    uvicorn_command,
)
from tests.servers import free_port  # noqa: E402

READY = "/webcall/health/ready"
LIVE = "/webcall/health/live"
# Any request through Django, for comparison: what every one of them costs.
NOT_FOUND = "/webcall/no-such-page"


async def ask(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, *, close: bool
) -> int:
    """One HTTP/1.1 GET on an open connection; the status."""
    connection = "close" if close else "keep-alive"
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: {connection}\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")
    )
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def flood(port: int, path: str, clients: int, seconds: float) -> tuple[list[float], dict]:
    """``clients`` keep-alive connections asking ``path`` back to back: each latency, and
    the count of each status."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (started := time.perf_counter()) < deadline:
                status = await ask(reader, writer, path, close=False)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()
            await writer.wait_closed()

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, statuses


async def poll(port: int, probes: int, seconds: float) -> dict[int, int]:
    """``probes`` probes, each asking once a second on a new connection."""
    statuses: dict[int, int] = {}

    async def probe(offset: float) -> None:
        await asyncio.sleep(offset)
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            tick = time.perf_counter()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            status = await ask(reader, writer, READY, close=True)
            statuses[status] = statuses.get(status, 0) + 1
            writer.close()
            await writer.wait_closed()
            await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - tick)))

    await asyncio.gather(*(probe(i / probes) for i in range(probes)))
    return statuses


def cpu_while(pid: int, wait: Callable[[], object]) -> float:
    """CPU seconds the process used while ``wait()`` ran."""
    before = cpu_seconds([pid])
    wait()
    return cpu_seconds([pid]) - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--probes", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="server to make a fresh database on ('': a SQLite file)",
    )
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/15",
        help="the cache and the channel layer ('': per-process, in memory)",
    )
    parser.add_argument("--uvicorn-args", default="", help="more options for Uvicorn")
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    workdir = Path(tempfile.mkdtemp(prefix="webcall-health-"))
    if args.redis:
        os.environ["BENCH_REDIS"] = args.redis
    with contextlib.ExitStack() as stack:
        postgres = (
            stack.enter_context(fresh_database(args.postgres, "webcall_health"))
            if args.postgres
            else None
        )
        env = site_environment(workdir, "http://127.0.0.1:9", postgres)
        servers = Servers(workdir, env)
        stack.callback(servers.stop_all)
        port = free_port()
        command = uvicorn_command(port, "--no-access-log", *args.uvicorn_args.split())
        server = servers.start("uvicorn", command, port)
        report(server.pid, port, args)
    print(f"\nLogs: {workdir}")


def report(pid: int, port: int, args: argparse.Namespace) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(flood(port, READY, 1, 1.0))  # warm up: imports, connections
    database = "PostgreSQL" if args.postgres else "SQLite"
    shared = "Redis" if args.redis else "in-memory cache and channel layer"
    print(
        f"Uvicorn, one process, {database} + {shared}; {args.clients} keep-alive clients, "
        f"{args.seconds:g} s each."
    )
    print(f"{'path':<22} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'CPU':>6}  statuses")
    for path in (READY, LIVE, NOT_FOUND):
        before = cpu_seconds([pid])
        latencies, statuses = loop.run_until_complete(
            flood(port, path, args.clients, args.seconds)
        )
        cpu = (cpu_seconds([pid]) - before) / args.seconds
        p50, p99 = (percentile(latencies, q) * 1000 for q in (0.5, 0.99))
        rate = len(latencies) / args.seconds
        print(f"{path:<22} {rate:>8.0f} {p50:>7.2f} {p99:>7.2f} {cpu:>6.0%}  {statuses}")

    idle = cpu_while(pid, lambda: time.sleep(args.idle_seconds))
    answered: dict[int, int] = {}

    def probing() -> None:
        answered.update(loop.run_until_complete(poll(port, args.probes, args.idle_seconds)))

    probed = cpu_while(pid, probing)
    asked = sum(answered.values())
    print(
        f"\n{args.probes} probes x 1 request/s on {READY}, {args.idle_seconds:g} s "
        f"({asked} requests, {answered}):"
    )
    print(f"  process CPU with no probe:  {idle / args.idle_seconds * 1000:6.2f} ms/s")
    print(f"  process CPU with probes:    {probed / args.idle_seconds * 1000:6.2f} ms/s")
    extra = max(0.0, probed - idle)
    print(
        f"  the probes' cost:           {extra / args.idle_seconds * 1000:6.2f} ms/s "
        f"({extra / args.idle_seconds:.2%} of a core; {extra / max(asked, 1) * 1000:.2f} ms "
        "per request)"
    )
    loop.close()


if __name__ == "__main__":
    main()
