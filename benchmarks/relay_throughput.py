"""Audio through the relay, against a direct connection to the sandbox, in one run.

Separate processes, as in production: the VoiceHub sandbox (``python -m
webcall_widget.sandbox``), the Django site under Daphne (the relay), and this script as
the client. The sandbox's ``loopback-agent`` returns every audio frame at once, so what
is measured is the path, not an agent. A second site process runs the relay with
Channels' stock dispatch (a thread hop before every frame, see benchmarks/asgi_with_hop.py)
to show what the relay's shortcut for browser frames is worth.

* latency: one 20 ms frame (640 bytes) out, wait for it back; round-trip percentiles.
* throughput: frames sent as fast as a window of 64 in flight allows; frames per second
  returned. A live call needs 50 frames/s each way.

Run with ``make bench`` (or ``python benchmarks/relay_throughput.py --frames 2000``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import free_port, wait_for_port  # noqa: E402

FRAME = bytes(range(256)) * 2 + bytes(128)  # 640 bytes: 20 ms of PCM16 at 16 kHz
assert len(FRAME) == 640
WINDOW = 64


def start(
    command: list[str], env: dict[str, str], port: int, log: Path
) -> subprocess.Popen[bytes]:
    """Start a server, its output going to ``log``, and wait until its port accepts
    connections."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port, process, " ".join(command[1:3]))
    except BaseException:
        process.kill()
        process.wait(10)
        raise
    return process


class Direct:
    """Our own VoiceHub client, straight to the sandbox."""

    name = "direct to the sandbox"

    def __init__(self, sandbox_url: str) -> None:
        self.sandbox_url = sandbox_url

    async def __aenter__(self) -> Direct:
        from webcall_widget.voicehub.client import create_web_call
        from webcall_widget.voicehub.events import Audio, EventNames, Joined, Mode, Transport
        from webcall_widget.voicehub.opening import open_session

        self.audio_type = Audio
        created = await asyncio.to_thread(
            create_web_call,
            self.sandbox_url,
            api_key="sandbox-key",
            agent_id="loopback-agent",
            mode=Mode.WEB_AUDIO,
            timeout=10,
        )
        self.session = await open_session(
            base_url=self.sandbox_url,
            socket_path=created.socket_path,
            transport=Transport.SOCKETIO,
            names=EventNames(),
            connect_timeout=10,
        )
        await self.session.join(created.call_id, ("audio", "text"))
        while not isinstance(await self.session.recv(), Joined):
            pass
        return self

    async def send(self, frame: bytes) -> None:
        await self.session.send_audio(frame)

    async def receive(self) -> None:
        while not isinstance(await self.session.recv(), self.audio_type):
            pass

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()


class Relayed:
    """A browser's view: the relay socket of a call created through the site."""

    name = "through the relay"

    def __init__(self, site_url: str) -> None:
        self.site_url = site_url

    async def __aenter__(self) -> Relayed:
        from websockets.asyncio.client import connect
        from websockets.typing import Origin

        response = await asyncio.to_thread(
            requests.post,
            f"{self.site_url}/webcall/agents/bench/calls",
            json={"mode": "WebAudio"},
            headers={"Origin": self.site_url},
            timeout=10,
        )
        response.raise_for_status()
        self.ws = await connect(
            response.json()["socket"],
            origin=Origin(self.site_url),
            compression=None,
            max_size=None,
        )
        while json.loads(await self.ws.recv()).get("type") != "ready":
            pass
        return self

    async def send(self, frame: bytes) -> None:
        await self.ws.send(frame)

    async def receive(self) -> None:
        while isinstance(await self.ws.recv(), str):
            pass

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.send(json.dumps({"type": "end"}))
        await self.ws.close()


async def latency(path: Any, rounds: int) -> list[float]:
    async with path as p:
        for _ in range(20):  # warm up
            await p.send(FRAME)
            await p.receive()
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            await p.send(FRAME)
            await p.receive()
            times.append((time.perf_counter() - started) * 1000)
    return times


async def throughput(path: Any, frames: int) -> float:
    async with path as p:
        window = asyncio.Semaphore(WINDOW)

        async def sender() -> None:
            for _ in range(frames):
                await window.acquire()
                await p.send(FRAME)

        started = time.perf_counter()
        task = asyncio.create_task(sender())
        for _ in range(frames):
            await p.receive()
            window.release()
        await task
        return frames / (time.perf_counter() - started)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(
    make: Callable[[], Any], rounds: int, frames: int, repeat: int
) -> dict[str, float]:
    runs: list[dict[str, float]] = []
    for _ in range(repeat):
        times = await latency(make(), rounds)
        rate = await throughput(make(), frames)
        runs.append(
            {
                "p50": statistics.median(times),
                "p95": percentile(times, 0.95),
                "fps": rate,
            }
        )
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=300, help="latency round trips")
    parser.add_argument("--frames", type=int, default=3000, help="frames for throughput")
    parser.add_argument("--repeat", type=int, default=3, help="runs per path (median kept)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="webcall-bench-"))
    sandbox_port, site_port, hop_port = free_port(), free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    site_url = f"http://127.0.0.1:{site_port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "BENCH_DATABASE": str(workdir / "bench.sqlite3"),
        "BENCH_UPSTREAM": sandbox_url,
    }
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v0"], env=env, check=True
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "django",
            "shell",
            "-v0",
            "-c",
            "from webcall_widget.models import Agent; Agent.objects.create(name='Bench', "
            "slug='bench', voicehub_agent_id='loopback-agent', api_key='sandbox-key', "
            "modes=['WebAudio'], default_mode='WebAudio')",
        ],
        env=env,
        check=True,
    )
    sandbox = start(
        [sys.executable, "-m", "webcall_widget.sandbox", "--port", str(sandbox_port)],
        env,
        sandbox_port,
        workdir / "sandbox.log",
    )
    daphne = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p"]
    site = start(
        [*daphne, str(site_port), "tests.asgi:application"], env, site_port, workdir / "site.log"
    )
    hop_site = start(
        [*daphne, str(hop_port), "benchmarks.asgi_with_hop:application"],
        env,
        hop_port,
        workdir / "hop-site.log",
    )
    hop_url = f"http://127.0.0.1:{hop_port}"
    try:
        direct = asyncio.run(
            measure(lambda: Direct(sandbox_url), args.rounds, args.frames, args.repeat)
        )
        relayed = asyncio.run(
            measure(lambda: Relayed(site_url), args.rounds, args.frames, args.repeat)
        )
        with_hop = asyncio.run(
            measure(lambda: Relayed(hop_url), args.rounds, args.frames, args.repeat)
        )
    except BaseException:
        for log in sorted(workdir.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}", file=sys.stderr)
        raise
    finally:
        for process in (site, hop_site, sandbox):
            process.terminate()
            process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nAudio frames of 640 bytes (20 ms at 16 kHz); median of {args.repeat} runs each.")
    print(f"{'':24}{'direct':>10}{'relayed':>10}{'relay adds':>12}{'stock hop':>12}")
    for key, label in (("p50", "round trip p50 (ms)"), ("p95", "round trip p95 (ms)")):
        print(
            f"{label:24}{direct[key]:10.2f}{relayed[key]:10.2f}"
            f"{relayed[key] - direct[key]:+12.2f}{with_hop[key]:12.2f}"
        )
    print(
        f"{'frames per second':24}{direct['fps']:10.0f}{relayed['fps']:10.0f}"
        f"{relayed['fps'] / direct['fps']:11.2f}x{with_hop['fps']:12.0f}"
    )
    print(
        f"\nRelayed throughput is {relayed['fps'] / direct['fps']:.2f}x a direct connection "
        f"({with_hop['fps'] / direct['fps']:.2f}x with Channels' per-frame thread hop). "
        f"A call needs 50 frames/s each way:\none relay process carried "
        f"{relayed['fps'] / 50:.0f} calls' worth of audio on this machine in this run."
    )


if __name__ == "__main__":
    main()
