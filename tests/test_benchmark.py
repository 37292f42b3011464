"""The benchmarks still run (tiny sizes: this checks they work and print their figures, not
how fast anything is)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def benchmark(script: str, *args: str, timeout: float = 120) -> str:
    """Run ``benchmarks/<script>`` with ``args``; what it printed (it must succeed)."""
    result = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_benchmark_prints_direct_and_relayed_figures_side_by_side():
    stdout = benchmark(
        "relay_throughput.py",
        "--rounds",
        "20",
        "--frames",
        "600",  # more than a visitor's burst: the benchmark must not be throttled
        "--repeat",
        "1",
    )
    assert "direct" in stdout and "relayed" in stdout
    assert "frames per second" in stdout
    assert "Relayed throughput is" in stdout


def test_load_benchmark_prints_every_path_side_by_side():
    stdout = benchmark(
        "load.py",
        "--calls",
        "3",
        "--seconds",
        "1",
        "--repeat",
        "1",
        "--targets",
        "direct",
        "nginx",
        "uvicorn",
        "--idle-calls",
        "3",
        "--text-calls",
        "2",
    )
    voice, _, chats = stdout.partition("Chat answers beside the voice calls")
    rows = {
        line.split()[1]: line.split() for line in voice.splitlines() if line[:5].strip() == "3"
    }
    assert set(rows) == {"direct", "nginx", "uvicorn"}
    assert all(row[7] == "0" for row in rows.values()), "frames were lost at 3 calls"
    answered = {
        line.split()[1]: line.split() for line in chats.splitlines() if line[:5].strip() == "3"
    }
    assert set(answered) == {"direct", "nginx", "uvicorn"}
    for path, row in answered.items():
        assert row[2] == "2", f"{path}: not every text call opened"
        assert row[-1] == "0", f"{path}: chat answers were lost"
        assert float(row[4]) > 0, f"{path}: no chat answer was timed"
    assert "KB per idle call" in stdout


def test_memory_benchmark_puts_an_idle_call_s_memory_down_to_files_and_lines():
    stdout = benchmark("memory.py", "--calls", "3", "--top", "5")
    assert "3 idle voice calls: RSS grew" in stdout
    per_call, under_app = re.search(
        r"Python objects: ([\d.]+) KiB per idle call, ([\d.]+) KiB of it under the app", stdout
    ).groups()  # type: ignore[union-attr]
    assert 0 < float(under_app) < float(per_call)
    assert "voicehub/opening.py:" in stdout, "the upstream socket is held by the app's code"


def test_health_benchmark_prints_the_endpoints_throughput_and_the_probes_cost():
    stdout = benchmark(
        "health.py",
        *("--seconds", "1", "--idle-seconds", "1", "--clients", "2"),
        *("--postgres", "", "--redis", ""),  # the figures, not the services, are checked
    )
    assert "/webcall/health/ready" in stdout and "req/s" in stdout
    assert "the probes' cost" in stdout


@pytest.mark.chaos
@pytest.mark.redis
@pytest.mark.xdist_group("test_chaos")  # beside the chaos tests, never while they run
@pytest.mark.timeout(300)
def test_chaos_benchmark_prints_the_time_to_resume_and_the_audio_gap_of_a_killed_worker():
    stdout = benchmark(
        "chaos.py",
        *("--calls", "4", "--voices", "1", "--repeat", "1", "--scenarios", "kill"),
        timeout=240,
    )
    assert "SIGKILL one worker" in stdout
    rows = {
        label: (int(n), spread)
        for label, n, spread in re.findall(
            r"^  (\S.*?) +(\d+)  (-|\S+ / \S+ / \S+)$", stdout, re.M
        )
    }
    assert rows["calls on the killed worker, per run"][0] == 1
    for figure in (
        "back after, per call moved (ms)",
        "agent audio missed, per voice call moved (ms)",
        "longest silence, per voice call moved (ms)",
        "messages never answered, per run",
        "messages missing from the stored transcript, per run",
    ):
        assert figure in rows, stdout
