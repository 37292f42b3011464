"""The relay benchmark still runs (tiny sizes: this checks it works, not how fast)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_benchmark_prints_direct_and_relayed_figures_side_by_side():
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/relay_throughput.py",
            "--rounds",
            "20",
            "--frames",
            "600",  # more than a visitor's burst: the benchmark must not be throttled
            "--repeat",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "direct" in result.stdout and "relayed" in result.stdout
    assert "frames per second" in result.stdout
    assert "Relayed throughput is" in result.stdout


def test_load_benchmark_prints_every_path_side_by_side():
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/load.py",
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
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    voice, _, chats = result.stdout.partition("Chat answers beside the voice calls")
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
    assert "KB per idle call" in result.stdout


def test_health_benchmark_prints_the_endpoints_throughput_and_the_probes_cost():
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/health.py",
            *("--seconds", "1", "--idle-seconds", "1", "--clients", "2"),
            *("--postgres", "", "--redis", ""),  # the figures, not the services, are checked
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "/webcall/health/ready" in result.stdout and "req/s" in result.stdout
    assert "the probes' cost" in result.stdout


@pytest.mark.chaos
@pytest.mark.redis
@pytest.mark.xdist_group("test_chaos")  # beside the chaos tests, never while they run
@pytest.mark.timeout(300)
def test_chaos_benchmark_prints_the_time_to_resume_and_the_audio_gap_of_a_killed_worker():
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/chaos.py",
            *("--calls", "4", "--voices", "1", "--repeat", "1", "--scenarios", "kill"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    assert "SIGKILL one worker" in result.stdout
    rows = {
        label: (int(n), spread)
        for label, n, spread in re.findall(
            r"^  (\S.*?) +(\d+)  (-|\S+ / \S+ / \S+)$", result.stdout, re.M
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
        assert figure in rows, result.stdout
