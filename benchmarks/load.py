"""Many voice calls at once, through the relay and without it, side by side in one run.

Every call sends a 640-byte PCM16 frame (20 ms at 16 kHz) every 20 ms and gets it back
from a lean loopback upstream (benchmarks/loopback_upstream.py), for ``--seconds`` per
run; ``--frame-ms 20 40 60`` runs it all again with longer frames on both legs
(AUDIO_FRAME_MS and UPSTREAM.FRAME_MS; ``--upstream-frame-ms`` keeps VoiceHub's apart)
and ends with the relay's CPU and added latency per frame length, side by side. The same
client measures, in one run:

* ``direct``: straight to the upstream over Socket.IO, as the relay itself talks to it;
* ``nginx``: through nginx as a pure WebSocket proxy, the reference for one hop;
* ``daphne`` / ``uvicorn``: through the relay, served by that ASGI server (one process);
* ``uvicorn uvloop``: the same with uvloop's event loop (``uvicorn[standard]``);
* ``uvicorn x2``: two relay processes behind nginx, with channels_redis, the Redis cache
  and PostgreSQL, as docs/deployment.md lays them out.

Beside the voice calls, ``--text-calls`` chat calls each send a message every second, and
the upstream answers with the same text as the agent's message: how long a visitor waits
for a chat answer while the process relays everyone's audio (the relay also stores both
messages of each exchange, as it does for every call).

For each: added latency over ``direct`` (p50 / p95 / p99 of the median run), frames lost,
calls refused, and the CPU of every process; then the chat answers' latency; then the
relay's memory per idle call. Run with ``make bench-load`` or
``python benchmarks/load.py --calls 10 50 100 150``.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import json
import math
import os
import random
import signal
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import wire  # noqa: E402
from benchmarks.writes import Report, Writes, settle  # noqa: E402
from tests.deployment import (  # noqa: E402
    APP,
    Deployment,
    Servers,
    fresh_database,
    nginx_command,
    proxy_conf,
    site_environment,
    uvicorn_command,
)
from tests.servers import free_port  # noqa: E402

BYTES_PER_MS = 32  # PCM16 at 16 kHz
MESSAGE_SECONDS = 1.0
WARM_UP_SECONDS = 2.0
STAMP = struct.Struct("<dI")  # send time (perf_counter), sequence number
AUDIO_HEADER = b'451-["audio.chunk",{"_placeholder":true,"num":0}]'
T = TypeVar("T")
C = TypeVar("C", bound="Call")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The agent every call goes to: the loopback upstream answers any agent and key.
BENCH_AGENT = (
    "from webcall_widget.models import Agent; Agent.objects.update_or_create("
    "slug='bench', defaults=dict(name='Bench', voicehub_agent_id='loopback', "
    "api_key='bench-key', modes=['WebAudio', 'text'], default_mode='WebAudio', "
    "max_concurrent_calls=100000, max_calls_per_day=1000000))"
)


# processes


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (nginx and uvicorn run workers)."""
    found = [pid]
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            found += process_tree(int(child))
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLOCK_TICKS


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


# the client


@dataclass
class CallResult:
    sent: int = 0
    received: int = 0
    latencies: list[float] = field(default_factory=list)
    refused: bool = False


class Call:
    """One caller's socket: the pacer sends its frames, and replies are timed as they arrive
    (in the socket's ``data_received``, with no task or queue between)."""

    mode = "WebAudio"

    def __init__(self, socket: wire.Socket, socketio: bool) -> None:
        self.socket = socket
        self.socketio = socketio
        self.result = CallResult()
        self.measure_from = math.inf
        socket.on_frame = self._received

    def _received(self, opcode: int, payload: bytes) -> None:
        if opcode == wire.BINARY and len(payload) >= STAMP.size:
            sent_at, _ = STAMP.unpack_from(payload)
            self.result.received += 1
            if sent_at >= self.measure_from:
                self.result.latencies.append((time.perf_counter() - sent_at) * 1000)

    def send_frame(self, seq: int, padding: bytes) -> None:
        self.result.sent += 1
        transport = self.socket.transport
        if transport is None or transport.is_closing():
            return  # closed under it: the frame counts as lost
        frame = STAMP.pack(time.perf_counter(), seq) + padding
        if self.socketio:
            self.socket.send_frames((wire.TEXT, AUDIO_HEADER), (wire.BINARY, frame))
        else:
            self.socket.send(wire.BINARY, frame)

    async def end(self) -> None:
        with contextlib.suppress(Exception):
            if not self.socketio:
                self.socket.send_text('{"type":"end"}')
            await asyncio.wait_for(self.socket.close(), 5)


class TextCall(Call):
    """One chat caller: the pacer sends its messages, and the agent's answer (the loopback
    upstream answers with the same text) is timed as it arrives."""

    mode = "text"

    def __init__(self, socket: wire.Socket, socketio: bool) -> None:
        super().__init__(socket, socketio)
        self._sent_at: dict[str, float] = {}

    def send_message(self, seq: int) -> None:
        self.result.sent += 1
        transport = self.socket.transport
        if transport is None or transport.is_closing():
            return
        text = f"message {seq}"
        self._sent_at[text] = time.perf_counter()
        if self.socketio:
            event = ["text.message", {"callId": "x", "text": text}]
            self.socket.send_text("42" + json.dumps(event))
        else:
            self.socket.send_text(json.dumps({"type": "text", "text": text}))

    def _received(self, opcode: int, payload: bytes) -> None:
        if opcode != wire.TEXT:
            return
        sent_at = self._sent_at.pop(self._answer(payload), None)
        if sent_at is None:
            return
        self.result.received += 1
        if sent_at >= self.measure_from:
            self.result.latencies.append((time.perf_counter() - sent_at) * 1000)

    def _answer(self, payload: bytes) -> str:
        """The text of the agent's final message in ``payload``; "" for any other frame."""
        if self.socketio:
            if not payload.startswith(b'42["created"'):
                return ""
            message = json.loads(payload[2:])[1]
        else:
            message = json.loads(payload)
            if message.get("type") != "message":
                return ""
        if message.get("role") != "agent" or not message.get("final"):
            return ""
        return str(message.get("text"))


async def open_socketio(ws_url: str, kind: type[Call]) -> Call:
    socket = await wire.connect(f"{ws_url}/socket.io/?EIO=4&transport=websocket")
    await socket.recv_text()  # open
    socket.send_text("40")
    await socket.recv_text()  # connected
    socket.send_text('42["channel.join",{"callId":"x","channels":["audio","text"]}]')
    await socket.recv_text()  # joined
    return kind(socket, socketio=True)


async def open_relay(site_url: str, deflate: bool, kind: type[Call]) -> Call | None:
    response = await asyncio.to_thread(
        requests.post,
        f"{site_url}/webcall/agents/bench/calls",
        json={"mode": kind.mode},
        headers={"Origin": site_url},
        timeout=30,
    )
    if response.status_code == 429:
        return None
    response.raise_for_status()
    try:
        socket = await wire.connect(response.json()["socket"], origin=site_url, deflate=deflate)
    except wire.WireError:
        return None
    while True:
        frame = json.loads(await socket.recv_text())
        if frame.get("type") == "ready":
            return kind(socket, socketio=False)
        if frame.get("type") == "error":
            await socket.close()
            return None


def audio_bodies(frame_bytes: int, count: int = 512) -> list[bytes]:
    """What follows each frame's stamp: PCM that varies like speech, a random walk, and
    differs from frame to frame over more than a deflate window (32 KB). With zeros, a
    server that compresses (permessage-deflate, which browsers offer) had nothing to do."""
    rng = random.Random(7)
    sample, samples = 0, array.array("h")
    for _ in range(count * (frame_bytes - STAMP.size) // 2):
        sample = max(-32000, min(32000, sample + rng.randint(-900, 900)))
        samples.append(sample)
    data = samples.tobytes()
    size = frame_bytes - STAMP.size
    return [data[i : i + size] for i in range(0, len(data), size)]


async def pace(
    calls: list[C],
    start: float,
    stop: float,
    period: float,
    send: Callable[[C, int, int], None],
) -> None:
    """``send(call, seq, slot)`` for every call once per ``period``, the calls spread evenly
    over it as real callers would be. One task sends them all: a task per call waking 50
    times a second was most of the client's own CPU."""
    loop = asyncio.get_running_loop()
    n = len(calls)
    if not n:  # every call refused: the window still passes, for the CPU figures
        await asyncio.sleep(max(0.0, stop - loop.time()))
        return
    step = period / n
    slots = int((stop - start) / period) * n
    slot = 0
    while slot < slots:
        delay = start + slot * step - loop.time()
        if delay > 0:
            # At least a millisecond, the loops' timer resolution: a shorter sleep returns
            # at once, and the pacer would spin. Each frame is stamped when it is sent.
            await asyncio.sleep(max(delay, 0.001))
        now = loop.time()
        while slot < slots and start + slot * step <= now:
            send(calls[slot % n], slot // n, slot)
            slot += 1


@dataclass
class Window:
    """CPU seconds of every process at the start and the end of the measured seconds:
    opening the calls (an HTTP request and a database write each) is not the relay's
    per-frame cost, and would dilute it."""

    pids: list[int]
    helpers: list[int]
    marks: list[tuple[float, float, float, float]] = field(default_factory=list)
    writes: Writes | None = None
    counts: list[Any] = field(default_factory=list)

    def mark(self) -> None:
        self.marks.append(
            (
                time.monotonic(),
                cpu_seconds(self.pids),
                cpu_seconds(self.helpers),
                sum(os.times()[:2]),
            )
        )
        if self.writes is not None:
            self.counts.append(self.writes.counts())

    def shares(self) -> tuple[float, float, float]:
        (t0, *before), (t1, *after) = self.marks
        return tuple((b - a) / (t1 - t0) for a, b in zip(before, after, strict=True))  # type: ignore[return-value]


async def run_calls(
    target: Target, calls: int, text_calls: int, seconds: float, window: Window, frame_ms: int
) -> tuple[list[CallResult], list[CallResult]]:
    """The voice calls' results and the text calls'."""
    opened: list[Call] = []
    refused = 0
    for _ in range(calls):
        call = await target.open(Call)
        if call is None:
            refused += 1
        else:
            opened.append(call)
    chats: list[TextCall] = []
    for _ in range(text_calls):
        chat = await target.open(TextCall)
        if isinstance(chat, TextCall):
            chats.append(chat)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.5
    measure_from = time.perf_counter() + 0.5 + WARM_UP_SECONDS
    for call in [*opened, *chats]:
        call.measure_from = measure_from
    loop.call_at(start + WARM_UP_SECONDS, window.mark)
    loop.call_at(start + WARM_UP_SECONDS + seconds, window.mark)
    stop = start + WARM_UP_SECONDS + seconds
    bodies = audio_bodies(frame_ms * BYTES_PER_MS)
    await asyncio.gather(
        pace(
            opened,
            start,
            stop,
            frame_ms / 1000,
            lambda call, seq, slot: call.send_frame(seq, bodies[(seq + slot) % len(bodies)]),
        ),
        pace(
            chats,
            start,
            stop,
            MESSAGE_SECONDS,
            lambda call, seq, _: call.send_message(seq),
        ),
    )
    await asyncio.sleep(1.0)  # let the last frames come back
    await asyncio.gather(*(call.end() for call in [*opened, *chats]))
    voice = [c.result for c in opened] + [CallResult(refused=True) for _ in range(refused)]
    return voice, [c.result for c in chats]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """The client's loop: uvloop's, like the upstream's, so that it costs little."""
    with asyncio.Runner(loop_factory=wire.new_event_loop) as runner:
        return runner.run(coroutine)


@dataclass
class Target:
    name: str
    url: str
    socketio: bool
    pids: list[int]
    helpers: list[int] = field(default_factory=list)  # nginx in front of the relay, Redis
    deflate: bool = False  # offer permessage-deflate to the relay, as browsers do
    writes: Writes | None = None  # what its calls write to Redis and PostgreSQL

    async def open(self, kind: type[Call]) -> Call | None:
        if self.socketio:
            return await open_socketio(self.url.replace("http://", "ws://"), kind)
        return await open_relay(self.url, self.deflate, kind)


@dataclass
class Measured:
    p50: float
    p95: float
    p99: float
    lost: int
    refused: int
    cpu: float  # share of one core, the target's own processes
    helper_cpu: float
    client_cpu: float  # this process: when it nears 100 %, the client is what is measured
    text_calls: int  # opened
    message_latencies: list[float]
    messages_lost: int


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(
    target: Target, calls: int, text_calls: int, seconds: float, frame_ms: int
) -> Measured:
    window = Window(
        [p for pid in target.pids for p in process_tree(pid)],
        [p for pid in target.helpers for p in process_tree(pid)],
    )
    results, chats = run(run_calls(target, calls, text_calls, seconds, window, frame_ms))
    latencies = [x for r in results for x in r.latencies]
    message_latencies = [x for r in chats for x in r.latencies]
    cpu, helper_cpu, client_cpu = window.shares()
    return Measured(
        p50=percentile(latencies, 0.50),
        p95=percentile(latencies, 0.95),
        p99=percentile(latencies, 0.99),
        lost=sum(r.sent - r.received for r in results),
        refused=sum(r.refused for r in results),
        cpu=cpu,
        helper_cpu=helper_cpu,
        client_cpu=client_cpu,
        text_calls=len(chats),
        message_latencies=message_latencies,
        messages_lost=sum(r.sent - r.received for r in chats),
    )


@dataclass
class Chats:
    """The chat answers of every run of one size and path, pooled: one run has too few for
    a p99 of its own (ten calls for 10 s answer 100 messages, whose p99 is their maximum)."""

    opened: int  # the fewest text calls a run opened
    p50: float
    p99: float
    lost: int

    @classmethod
    def of(cls, runs: list[Measured]) -> Chats:
        latencies = [x for run in runs for x in run.message_latencies]
        return cls(
            opened=min(run.text_calls for run in runs),
            p50=percentile(latencies, 0.50),
            p99=percentile(latencies, 0.99),
            lost=sum(run.messages_lost for run in runs),
        )


def median_run(runs: list[Measured]) -> Measured:
    """The run with the median p99, so that its figures belong together."""
    return sorted(runs, key=lambda m: m.p99)[len(runs) // 2]


async def idle_calls(target: Target, calls: int) -> list[Call]:
    opened = []
    for _ in range(calls):
        call = await target.open(Call)
        if call is not None:
            opened.append(call)
    return opened


def memory_per_idle_call(target: Target, calls: int) -> tuple[float, int]:
    pids = [p for pid in target.pids for p in process_tree(pid)]

    async def hold() -> tuple[float, int]:
        before = rss_bytes(pids)
        opened = await idle_calls(target, calls)
        await asyncio.sleep(1)
        after = rss_bytes(pids)
        await asyncio.gather(*(call.end() for call in opened))
        return (after - before) / max(1, len(opened)), len(opened)

    measured = run(hold())
    wait_released(target)
    return measured


def wait_released(target: Target, timeout: float = 60.0) -> None:
    """Wait until the relay holds no call (its health says so): calls end after their
    sockets close, and a load run started before would find the process still full."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException, ValueError):
            state = requests.get(f"{target.url}/webcall/health/live", timeout=2).json()
            if state.get("voice_calls") == 0:
                return
        time.sleep(0.2)
    print(f"{target.name}: still holding calls {timeout:g} s after they ended", file=sys.stderr)


# the run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[10, 50, 100, 150])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (median kept)")
    parser.add_argument(
        "--targets",
        nargs="+",
        default=["direct", "nginx", "daphne", "uvicorn", "uvicorn uvloop", "uvicorn x2"],
        help="which paths to measure",
    )
    parser.add_argument(
        "--text-calls",
        type=int,
        default=10,
        help="chat calls beside the voice calls, each sending a message every second",
    )
    parser.add_argument(
        "--frame-ms",
        type=int,
        nargs="+",
        default=[20],
        choices=(20, 40, 60),
        help="milliseconds of audio per frame (AUDIO_FRAME_MS and the client's frames); "
        "several run one after the other and are compared at the end",
    )
    parser.add_argument(
        "--upstream-frame-ms",
        type=int,
        choices=(20, 40, 60),
        help="UPSTREAM.FRAME_MS (default: the same as --frame-ms): the relay cuts the "
        "visitor's frames to it and joins the agent's back",
    )
    parser.add_argument("--idle-calls", type=int, default=200, help="0 skips the memory figure")
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="database server for 'uvicorn x2' (a fresh database is made on it)",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument(
        "--capacity",
        type=int,
        default=1000,
        help="LIMITS.VOICE_CALLS_PER_PROCESS for the relay: high by default, so that a process "
        "is measured with every call it is given (the app's default is 75: pass it to see "
        "the calls past it refused)",
    )
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="the calls through the relay offer permessage-deflate, as browsers do (the "
        "server then compresses every frame it sends them)",
    )
    parser.add_argument(
        "--uvicorn-args",
        default="",
        help="more options for every Uvicorn, e.g. '--ws-per-message-deflate false'",
    )
    args = parser.parse_args()
    os.environ["BENCH_VOICE_CALLS_PER_PROCESS"] = str(args.capacity)

    # A terminated run stops its servers too, as an interrupted one does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    rows: list[Row] = []
    for number, frame_ms in enumerate(args.frame_ms):
        if number:
            args.idle_calls = 0  # memory does not depend on the frames' length
        os.environ["BENCH_AUDIO_FRAME_MS"] = str(frame_ms)
        os.environ["BENCH_UPSTREAM_FRAME_MS"] = str(args.upstream_frame_ms or frame_ms)
        workdir = Path(tempfile.mkdtemp(prefix=f"webcall-load-{frame_ms}ms-"))
        http_port, ws_port = free_port(), free_port()
        upstream_url = f"http://127.0.0.1:{http_port}"
        env = site_environment(workdir, upstream_url, None, setup=BENCH_AGENT)
        servers = Servers(workdir, env)
        try:
            targets = start_targets(servers, args, workdir, http_port, ws_port)
            for target in targets:
                target.deflate = args.deflate and not target.socketio
            rows += report(targets, args, frame_ms)
        finally:
            servers.stop_all()
        print(f"\nLogs: {workdir}\n")
    if len(args.frame_ms) > 1:
        compare_frames(rows, args)


@dataclass(frozen=True)
class Row:
    frame_ms: int
    calls: int
    path: str
    measured: Measured


def compare_frames(rows: list[Row], args: argparse.Namespace) -> None:
    """The relay's CPU and added latency per frame length, against the first length."""
    upstream = (
        f"UPSTREAM.FRAME_MS {args.upstream_frame_ms}"
        if args.upstream_frame_ms
        else ("VoiceHub's frames as long")
    )
    print(f"Per frame length (AUDIO_FRAME_MS; {upstream}), CPU against {args.frame_ms[0]} ms:")
    header = f"{'calls':>5}  {'path':<14} " + " ".join(
        f"{f'{ms} ms CPU':>10} {'+p50':>6} {'+p99':>7}" for ms in args.frame_ms
    )
    print(header)
    print("-" * len(header))
    found = {(r.frame_ms, r.calls, r.path): r.measured for r in rows}
    direct = {(r.frame_ms, r.calls): r.measured for r in rows if r.path == "direct"}
    for calls in args.calls:
        for path in dict.fromkeys(r.path for r in rows if r.path != "direct"):
            first = found[(args.frame_ms[0], calls, path)]
            cells = []
            for ms in args.frame_ms:
                m, base = found[(ms, calls, path)], direct.get((ms, calls))
                ratio = m.cpu / first.cpu if first.cpu else float("nan")
                added50 = m.p50 - base.p50 if base else float("nan")
                added99 = m.p99 - base.p99 if base else float("nan")
                cells.append(f"{m.cpu:>4.0%} x{ratio:<4.2f} {added50:>+6.2f} {added99:>+7.2f}")
            print(f"{calls:>5}  {path:<14} " + " ".join(cells), flush=True)


def start_targets(
    servers: Servers,
    args: argparse.Namespace,
    workdir: Path,
    http_port: int,
    ws_port: int,
) -> list[Target]:
    python = sys.executable
    upstream = servers.start(
        "upstream",
        [
            python,
            "benchmarks/loopback_upstream.py",
            "--http-port",
            str(http_port),
            "--ws-port",
            str(ws_port),
        ],
        ws_port,
    )
    targets = []
    url = f"http://127.0.0.1:{ws_port}"
    if "direct" in args.targets:
        targets.append(Target("direct", url, True, [upstream.pid]))
    if "nginx" in args.targets:
        port = free_port()
        command = nginx_command(workdir, "nginx", proxy_conf(port, [ws_port]))
        nginx = servers.start("nginx", command, port)
        targets.append(Target("nginx", f"http://127.0.0.1:{port}", True, [nginx.pid]))
    if "daphne" in args.targets:
        port = free_port()
        daphne = servers.start(
            "daphne",
            [python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), APP],
            port,
        )
        targets.append(Target("daphne", f"http://127.0.0.1:{port}", False, [daphne.pid]))
    options = args.uvicorn_args.split()
    for name, loop in (("uvicorn", "asyncio"), ("uvicorn uvloop", "uvloop")):
        if name in args.targets:
            port = free_port()
            command = uvicorn_command(port, "--loop", loop, *options)
            process = servers.start(name.replace(" ", "-"), command, port)
            targets.append(Target(name, f"http://127.0.0.1:{port}", False, [process.pid]))
    if "uvicorn x2" in args.targets:
        targets.append(start_two_workers(servers, args, workdir))
    return targets


def start_two_workers(servers: Servers, args: argparse.Namespace, workdir: Path) -> Target:
    """Two relay processes behind nginx, sharing Redis (layer and cache) and PostgreSQL."""
    database = contextlib.ExitStack()
    servers.cleanups.append(database.close)
    postgres = database.enter_context(fresh_database(args.postgres))
    servers.env = site_environment(
        workdir, servers.env["BENCH_UPSTREAM"], postgres, setup=BENCH_AGENT, redis=args.redis
    )
    options = tuple(args.uvicorn_args.split())
    workers = Deployment(servers, uvicorn_options=options, name="x2-worker").start()
    assert workers.nginx is not None
    return Target(
        "uvicorn x2",
        workers.url,
        False,
        [workers.pid(0), workers.pid(1)],
        [workers.nginx.pid],
        writes=Writes(args.redis, postgres),
    )


def report(targets: list[Target], args: argparse.Namespace, frame_ms: int) -> list[Row]:
    # Memory first: after the load runs, freed memory is reused and hides what a call costs.
    memory = {
        target.name: memory_per_idle_call(target, args.idle_calls)
        for target in targets
        if args.idle_calls and not target.socketio and target.name != "uvicorn x2"
    }
    print(
        f"{len(targets)} paths, {args.seconds:g} s per run, median of {args.repeat} runs; "
        f"each call sends and gets back a {frame_ms * BYTES_PER_MS}-byte frame every "
        f"{frame_ms} ms."
    )
    header = (
        f"{'calls':>5}  {'path':<14} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'+p50':>7} {'+p99':>8} {'lost':>6} {'refused':>7} {'CPU':>6} {'nginx CPU':>9} "
        f"{'client CPU':>10}"
    )
    print(header)
    print("-" * len(header))
    chats: list[str] = []
    rows: list[Row] = []
    for calls in args.calls:
        baseline: Measured | None = None
        chat_baseline: Chats | None = None
        for target in targets:
            runs = [
                measure(target, calls, args.text_calls, args.seconds, frame_ms)
                for _ in range(args.repeat)
            ]
            m, chat = median_run(runs), Chats.of(runs)
            rows.append(Row(frame_ms, calls, target.name, m))
            if target.name == "direct":
                baseline, chat_baseline = m, chat
            added50 = m.p50 - baseline.p50 if baseline else float("nan")
            added99 = m.p99 - baseline.p99 if baseline else float("nan")
            helper = f"{m.helper_cpu:>8.0%}" if target.helpers else f"{'':>8}"
            print(
                f"{calls:>5}  {target.name:<14} {m.p50:>7.2f} {m.p95:>7.2f} {m.p99:>7.2f} "
                f"{added50:>+7.2f} {added99:>+8.2f} {m.lost:>6} {m.refused:>7} {m.cpu:>6.0%} "
                f"{helper}  {m.client_cpu:>9.0%}",
                flush=True,
            )
            if args.text_calls:
                added = chat.p99 - chat_baseline.p99 if chat_baseline else float("nan")
                chats.append(
                    f"{calls:>5}  {target.name:<14} {chat.opened:>5} {chat.p50:>7.2f} "
                    f"{chat.p99:>7.2f} {added:>+8.2f} {chat.lost:>6}"
                )
    if chats:
        print(
            f"\nChat answers beside the voice calls ({args.text_calls} text calls, a message "
            f"every second each; the same runs, the answers of all {args.repeat} pooled):"
        )
        header = (
            f"{'calls':>5}  {'path':<14} {'chats':>5} {'p50 ms':>7} {'p99 ms':>7} "
            f"{'+p99':>8} {'lost':>6}"
        )
        print(header)
        print("-" * len(header))
        print("\n".join(chats))
    if memory:
        print()
    for name, (per_call, held) in memory.items():
        print(f"{name}: {per_call / 1024:.0f} KB per idle call ({held} held)")
    for target in targets:
        if target.writes is not None:
            print()
            resident = ", ".join(f"{rss_bytes([pid]) / 2**20:.0f} MiB" for pid in target.pids)
            print(f"{target.name}: each process's memory (RSS) after the runs above: {resident}")
            report = measure_writes(
                target, args.calls[-1], args.text_calls, args.seconds, frame_ms
            )
            print("\n".join(report.lines()))
    return rows


def measure_writes(
    target: Target, calls: int, text_calls: int, seconds: float, frame_ms: int
) -> Report:
    """One more run, counting what the calls write: while they talk (the measured seconds),
    and the rest, opening and ending them (less the talk outside the measured seconds)."""
    assert target.writes is not None
    settle()
    before = target.writes.counts()
    window = Window([], [], writes=target.writes)
    run(run_calls(target, calls, text_calls, seconds, window, frame_ms))
    settle()
    total = target.writes.counts() - before
    talking = window.counts[1] - window.counts[0]
    outside = talking.times((0.5 + WARM_UP_SECONDS + 1.0) / seconds)  # warm-up, last frames
    return Report(calls, text_calls, seconds, total - talking - outside, talking)


if __name__ == "__main__":
    main()
