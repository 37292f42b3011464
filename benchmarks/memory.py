"""Where an idle call's memory goes: one relay process, ``--calls`` idle voice calls, and
Python's own accounting of what they hold (tracemalloc), beside the process's RSS growth.

The relay (Uvicorn by default, ``--server daphne``) runs under benchmarks/traced_server.py
against the lean loopback upstream, as ``make bench-load`` runs it. A few calls are opened
and ended first (so that what every process allocates once is not counted), then tracing
compares the process before and after ``--calls`` calls are open and idle. Each allocation
is put down to the innermost frame of the app's code that led to it ("under the app"), or,
with none (the server accepting the socket, the event loop), to the library that made it.
Run with ``make bench-memory``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.load import (  # noqa: E402
    BENCH_AGENT,
    Target,
    idle_calls,
    rss_bytes,
    run,
    wait_released,
)
from tests.deployment import APP, Servers, site_environment, uvicorn_command  # noqa: E402
from tests.servers import free_port  # noqa: E402

APP_PACKAGE = "webcall_widget/"
# The sandbox's mount only passes every socket on to the site's Channels stack: what that
# stack holds belongs to Channels, as on a site without the sandbox.
PASSING_ON = ("sandbox/mount.py",)
WARM_CALLS = 10


def server_command(server: str, port: int) -> list[str]:
    traced = [sys.executable, "benchmarks/traced_server.py"]
    if server == "uvicorn":
        return [*traced, "uvicorn", *uvicorn_command(port, "--loop", "asyncio")[3:]]
    return [*traced, "daphne", "-b", "127.0.0.1", "-p", str(port), APP]


class Traced:
    """The relay process's snapshots, taken by signal (benchmarks/traced_server.py)."""

    def __init__(self, process: subprocess.Popen[bytes], directory: Path) -> None:
        self.process = process
        self.directory = directory
        self.taken = 0

    def _signal_and_wait(self, path: Path, seconds: float = 120) -> None:
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + seconds
        while not path.exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"the relay did not write {path.name}")
            time.sleep(0.05)

    def start(self) -> None:
        self._signal_and_wait(self.directory / "tracing")

    def snapshot(self) -> tracemalloc.Snapshot:
        n, self.taken = self.taken, self.taken + 1
        self._signal_and_wait(self.directory / f"{n}.done")
        return tracemalloc.Snapshot.load(str(self.directory / f"{n}.snapshot"))


def where(frames: tracemalloc.Traceback) -> tuple[str, str]:
    """(group, line) an allocation is put down to: the app's innermost file and line, or
    the library (or stdlib module) that made it."""
    for frame in reversed(frames):  # innermost last
        if APP_PACKAGE in frame.filename:
            name = frame.filename.rsplit(APP_PACKAGE, 1)[1]
            if name not in PASSING_ON:
                return name, f"{name}:{frame.lineno}"
    frame = next((f for f in reversed(frames) if "site-packages/" in f.filename), frames[-1])
    if "site-packages/" in frame.filename:
        path = frame.filename.rsplit("site-packages/", 1)[1]
        return f"({path.split('/')[0]})", f"({path}:{frame.lineno})"
    module = Path(frame.filename).name
    parent = Path(frame.filename).parent.name
    name = f"{parent}/{module}" if parent == "asyncio" else module
    return f"({name})", f"({name}:{frame.lineno})"


def innermost(frames: tracemalloc.Traceback) -> str:
    frame = frames[-1]
    path = frame.filename.rsplit("site-packages/", 1)[-1].rsplit("lib/python", 1)[-1]
    return f"{path}:{frame.lineno}"


def report(
    before: tracemalloc.Snapshot,
    after: tracemalloc.Snapshot,
    calls: int,
    top: int,
    under: tuple[str, ...] = (),
) -> None:
    groups: dict[str, int] = {}
    lines: dict[str, int] = {}
    beneath: dict[str, int] = {}
    for stat in after.compare_to(before, "traceback"):
        group, line = where(stat.traceback)
        groups[group] = groups.get(group, 0) + stat.size_diff
        lines[line] = lines.get(line, 0) + stat.size_diff
        if line in under:
            made = f"{line} <- {innermost(stat.traceback)}"
            beneath[made] = beneath.get(made, 0) + stat.size_diff
    total = sum(groups.values())
    app = sum(size for group, size in groups.items() if not group.startswith("("))
    print(
        f"Python objects: {total / calls / 1024:.1f} KiB per idle call, "
        f"{app / calls / 1024:.1f} KiB of it under the app's code, "
        f"{(total - app) / calls / 1024:.1f} KiB in the server and libraries alone"
    )
    tables = [("by file", groups), ("by line", lines)]
    if under:
        tables.append(("beneath the lines asked for, by the line that allocated", beneath))
    for title, sizes in tables:
        print(f"\n  {title} (B per call; in parentheses: no frame of the app's)")
        for name, size in sorted(sizes.items(), key=lambda item: -item[1])[:top]:
            print(f"  {size / calls:8.0f}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="idle calls held at once")
    parser.add_argument("--server", choices=("uvicorn", "daphne"), default="uvicorn")
    parser.add_argument("--top", type=int, default=15, help="rows per table")
    parser.add_argument(
        "--under",
        nargs="*",
        default=(),
        metavar="FILE:LINE",
        help="also break these lines of the 'by line' table down by the line that allocated",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="webcall-memory-") as tmp:
        workdir = Path(tmp)
        http_port, ws_port, port = free_port(), free_port(), free_port()
        env = site_environment(
            workdir,
            f"http://127.0.0.1:{http_port}",
            None,
            setup=BENCH_AGENT,
            voice_calls_per_process=str(args.calls + WARM_CALLS + 100),
        )
        servers = Servers(workdir, {**env, "TRACE_DIR": str(workdir)})
        try:
            upstream = [sys.executable, "benchmarks/loopback_upstream.py"]
            upstream += ["--http-port", str(http_port), "--ws-port", str(ws_port)]
            servers.start("upstream", upstream, ws_port)
            relay = servers.start(args.server, server_command(args.server, port), port)
            measure(
                Target(args.server, f"http://127.0.0.1:{port}", False, [relay.pid]),
                relay,
                workdir,
                args,
            )
        finally:
            servers.stop_all()


def measure(
    target: Target, relay: subprocess.Popen[bytes], workdir: Path, args: argparse.Namespace
) -> None:
    traced = Traced(relay, workdir)
    traced.start()

    async def warm_up() -> None:
        opened = await idle_calls(target, WARM_CALLS)
        await asyncio.gather(*(call.end() for call in opened))

    async def hold() -> tuple[tracemalloc.Snapshot, int, tracemalloc.Snapshot, int, int]:
        before = await asyncio.to_thread(traced.snapshot)
        rss_before = rss_bytes(target.pids)
        opened = await idle_calls(target, args.calls)
        await asyncio.sleep(1)
        rss_after = rss_bytes(target.pids)
        after = await asyncio.to_thread(traced.snapshot)
        await asyncio.gather(*(call.end() for call in opened))
        return before, rss_before, after, rss_after, len(opened)

    run(warm_up())
    wait_released(target)
    before, rss_before, after, rss_after, calls = run(hold())
    if calls == 0:
        raise SystemExit("no call opened: see the relay's log")
    grew = (rss_after - rss_before) / calls / 1024
    print(
        f"{args.server}, {calls} idle voice calls: RSS grew {grew:.0f} KiB per call "
        "(tracing's own bookkeeping included)"
    )
    report(before, after, calls, args.top, tuple(args.under))


if __name__ == "__main__":
    main()
