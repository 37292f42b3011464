"""The samples of docs/deployment-no-lost-calls.md do what the page says: each stop timeout
leaves a stopping process its DRAIN_SECONDS, Kubernetes probes the endpoints the health
page names and replaces one pod at a time, and the rolling-restart script restarts one
worker at a time, each ready again before the next one stops.

The script runs against stand-in workers (an HTTP server per port) and a stand-in
``systemctl``: what is checked is the order of the steps, not systemd."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from webcall_widget.conf import DOCS

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
DRAIN_SECONDS = DOCS["DRAIN_SECONDS"].default
HOST = "www.example.com"


def test_the_systemd_unit_gives_a_stopping_worker_more_than_drain_seconds():
    unit = (EXAMPLES / "webcall@.service").read_text()
    assert re.search(r"^KillSignal=SIGTERM$", unit, re.M)
    (timeout,) = re.findall(r"^TimeoutStopSec=(\d+)$", unit, re.M)
    assert int(timeout) > DRAIN_SECONDS


def kubernetes() -> dict[str, Any]:
    documents = list(yaml.safe_load_all((EXAMPLES / "kubernetes.yaml").read_text()))
    return {document["kind"]: document for document in documents}


def test_kubernetes_gives_a_stopping_pod_its_pre_stop_and_drain_seconds():
    pod = kubernetes()["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(pre_stop[1]) + DRAIN_SECONDS


def test_kubernetes_probes_liveness_and_readiness_on_the_health_endpoints():
    (container,) = kubernetes()["Deployment"]["spec"]["template"]["spec"]["containers"]
    for probe, path in (
        ("livenessProbe", "/webcall/health/live"),
        ("readinessProbe", "/webcall/health/ready"),
    ):
        request = container[probe]["httpGet"]
        assert request["path"] == path
        assert request["httpHeaders"] == [{"name": "Host", "value": HOST}]


def test_kubernetes_starts_a_new_pod_before_it_stops_an_old_one():
    deployment = kubernetes()["Deployment"]["spec"]
    assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (container,) = deployment["template"]["spec"]["containers"]
    command = container["command"]
    assert "--ws=websockets-sansio" in command and "--ws-per-message-deflate=false" in command


def test_the_ingress_sends_a_resume_refused_by_a_stopping_pod_to_the_next_one():
    annotations = kubernetes()["Ingress"]["metadata"]["annotations"]
    retried = annotations["nginx.ingress.kubernetes.io/proxy-next-upstream"].split()
    assert "http_503" in retried and "error" in retried


# the rolling-restart script


class Worker(ThreadingHTTPServer):
    """A stand-in worker: ``/restart`` (what the stand-in systemctl asks) makes its
    readiness answer 503 ``not_ready_for`` more times; every request is logged."""

    def __init__(self, log: list[tuple[str, int, int]], not_ready_for: int) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.log = log
        self.not_ready_for = not_ready_for
        self.unready = 0


class Handler(BaseHTTPRequestHandler):
    server: Worker

    def do_GET(self) -> None:
        worker = self.server
        status = 200
        if self.path == "/restart":
            worker.unready = worker.not_ready_for
        elif self.path != "/webcall/health/ready" or self.headers["Host"] != HOST:
            status = 404
        elif worker.unready:
            worker.unready -= 1
            status = 503
        worker.log.append((self.path, worker.server_port, status))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def workers(log: list[tuple[str, int, int]], *not_ready_for: int) -> Iterator[list[int]]:
    servers = [Worker(log, n) for n in not_ready_for]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        yield [s.server_port for s in servers]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def rolling_restart(tmp_path: Path, ports: list[int], ready_within: int = 10) -> str:
    """Run the script with a ``systemctl`` that restarts a stand-in worker; its stderr."""
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(
        '#!/bin/sh\nport=${2#webcall@}\ncurl -fs -o /dev/null "http://127.0.0.1:$port/restart"\n'
    )
    systemctl.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{tmp_path}:{os.environ['PATH']}",
        "PORTS": " ".join(map(str, ports)),
        "READY_WITHIN": str(ready_within),
    }
    result = subprocess.run(
        ["sh", str(EXAMPLES / "rolling-restart.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return f"{result.returncode} {result.stderr}"


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@needs_curl
def test_the_rolling_restart_waits_for_each_worker_to_be_ready_before_the_next(tmp_path):
    log: list[tuple[str, int, int]] = []
    with workers(log, 2, 1) as (first, second):
        assert rolling_restart(tmp_path, [first, second]) == "0 "
    ready = "/webcall/health/ready"
    assert log == [
        ("/restart", first, 200),
        (ready, first, 503),
        (ready, first, 503),
        (ready, first, 200),
        ("/restart", second, 200),
        (ready, second, 503),
        (ready, second, 200),
    ]


@needs_curl
def test_the_rolling_restart_stops_at_a_worker_that_does_not_come_back(tmp_path):
    log: list[tuple[str, int, int]] = []
    with workers(log, 100, 0) as (first, second):
        said = rolling_restart(tmp_path, [first, second], ready_within=2)
    assert said.startswith("1 ") and f"webcall@{first} is not ready" in said
    assert ("/restart", second, 200) not in log
