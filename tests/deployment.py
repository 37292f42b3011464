"""The README's deployment as processes of their own: Uvicorn workers behind nginx, sharing
PostgreSQL, and Redis for the channel layer and the cache, with an upstream beside them.

The benchmarks (``make bench-load``, ``bench-health``, ``bench-start``, ``bench-chaos``) and
the chaos tests (tests/test_chaos.py) start them from here. Each process writes its output
to ``<workdir>/<name>.log``. The site's settings are benchmarks/settings.py, told what to use
by the ``BENCH_*`` variables :func:`site_environment` sets.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

from tests.servers import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
APP = "tests.asgi:application"
NGINX_EXAMPLE = ROOT / "docs" / "examples" / "nginx.conf"


class Servers:
    """Every process of one run, started in ``workdir`` and stopped together."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.cleanups: list[Callable[[], object]] = []  # run once every process stopped

    def start(self, name: str, command: list[str], port: int) -> subprocess.Popen[bytes]:
        with (self.workdir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                command, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        self.processes[name] = process
        try:
            wait_for_port(port, process, name)
        except BaseException:
            self.stop(name)
            raise
        return process

    def stop(self, name: str, timeout: float = 15) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds; its exit
        status."""
        process = self.processes.pop(name)
        process.terminate()
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(5)

    def kill(self, name: str) -> None:
        """SIGKILL: the process dies at once, as by the out-of-memory killer."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(5)

    def stop_all(self) -> None:
        """The processes in the reverse order of their start (those that use the others
        first)."""
        for name in reversed(list(self.processes)):
            self.stop(name)
        for cleanup in self.cleanups:
            with contextlib.suppress(Exception):
                cleanup()


# the site


def site_environment(
    workdir: Path,
    upstream_url: str,
    postgres: str | None,
    *,
    setup: str = "",
    static_root: Path | None = None,
    **bench: str,
) -> dict[str, str]:
    """The environment of the site's processes (benchmarks/settings.py), with the
    database migrated and ``setup`` (Python, e.g. agents to create) run in it, and the
    static files collected to ``static_root`` if given. ``bench``: more ``BENCH_<KEY>``
    variables (``REDIS``, ``REJOIN``, ``DRAIN_SECONDS``...)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "BENCH_DATABASE": str(workdir / "bench.sqlite3"),
        "BENCH_UPSTREAM": upstream_url,
        **{f"BENCH_{key.upper()}": value for key, value in bench.items()},
    }
    if postgres:
        env["BENCH_POSTGRES"] = postgres
    django = [sys.executable, "-m", "django"]
    subprocess.run([*django, "migrate", "--noinput", "-v0"], env=env, check=True, cwd=ROOT)
    if static_root is not None:
        env["BENCH_STATIC_ROOT"] = str(static_root)
        command = [*django, "collectstatic", "--noinput", "-v0"]
        subprocess.run(command, env=env, check=True, cwd=ROOT)
    if setup:
        subprocess.run([*django, "shell", "-v0", "-c", setup], env=env, check=True, cwd=ROOT)
    return env


_DATABASE = """
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as db:
    db.execute(f'DROP DATABASE IF EXISTS "{sys.argv[2]}" WITH (FORCE)')
    if sys.argv[3] == "create":
        db.execute(f'CREATE DATABASE "{sys.argv[2]}"')
"""


@contextlib.contextmanager
def fresh_database(server: str, prefix: str = "webcall_bench") -> Iterator[str]:
    """A database of its own on the PostgreSQL ``server`` (a URL of any database there),
    dropped afterwards: its URL."""
    name = f"{prefix}_{os.getpid()}"

    def run(what: str, *, check: bool) -> None:
        command = [sys.executable, "-c", _DATABASE, server, name, what]
        subprocess.run(command, check=check, cwd=ROOT)

    run("create", check=True)
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        run("drop", check=False)


# the processes


def uvicorn_command(port: int, *options: str, app: str = APP) -> list[str]:
    """One Uvicorn process on ``port`` of 127.0.0.1, as the deployment page runs them."""
    command = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--lifespan", "off", "--log-level", "warning", "--ws", "websockets-sansio"]
    return [*command, *options, app]


NGINX_MAIN = """
worker_processes 1;
daemon off;
{user}
pid {dir}/{name}.pid;
error_log {dir}/{name}-error.log warn;
events {{ worker_connections 4096; }}
http {{
  # What Debian's nginx.conf has around the files of conf.d/: the static files' types
  # (a browser runs no audio worklet served as text/plain).
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  # One line a request (a socket's at its end): which backend answered it, how.
  log_format upstreams '$msec $status $upstream_addr $upstream_status $request_time '
                       '"$request"';
  access_log {dir}/{name}-access.log upstreams;
  client_body_temp_path {dir}/{name}-body;
  proxy_temp_path {dir}/{name}-proxy;
  fastcgi_temp_path {dir}/{name}-fastcgi;
  uwsgi_temp_path {dir}/{name}-uwsgi;
  scgi_temp_path {dir}/{name}-scgi;
{http}
}}
"""

# A pure WebSocket proxy to the least busy backend: the load benchmark's reference hop.
PROXY = """
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  upstream backend {{ least_conn; {servers} }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_read_timeout 3600s;
      proxy_buffering off;
    }}
  }}
"""


def proxy_conf(port: int, backends: list[int]) -> str:
    servers = " ".join(f"server 127.0.0.1:{p};" for p in backends)
    return PROXY.format(port=port, servers=servers)


def documented_conf(port: int, backends: list[int], static_root: Path | None = None) -> str:
    """docs/examples/nginx.conf, the deployment page's, listening on ``port`` in front of
    ``backends`` (its two ``server`` lines), serving ``static_root`` as the site's static
    files."""
    conf = NGINX_EXAMPLE.read_text()
    example_ports = re.findall(r"server 127\.0\.0\.1:(\d+)", conf)
    assert len(example_ports) == len(backends), "one backend per server line of the example"
    for example, port_ in zip(example_ports, backends, strict=True):
        conf = conf.replace(f"127.0.0.1:{example} ", f"127.0.0.1:{port_} ")
    conf = re.sub(r"listen 80;", f"listen 127.0.0.1:{port};", conf)
    if static_root is not None:
        conf = conf.replace("/srv/example/static/", f"{static_root}/")
    return conf


def _nginx_user() -> str:
    """Started by root, nginx hands its workers to ``nobody``, who cannot read the run's
    files (the static files it serves, its temp paths in the workdir): they stay with the
    user who started it."""
    if os.geteuid() != 0:
        return ""  # the directive would be ignored, with a warning
    return f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};"


def nginx_command(workdir: Path, name: str, http: str) -> list[str]:
    """nginx in the foreground with ``http`` (the http block's contents), its files in
    ``workdir``."""
    conf = workdir / f"{name}.conf"
    conf.write_text(NGINX_MAIN.format(dir=workdir, name=name, http=http, user=_nginx_user()))
    return [shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf), "-e", "stderr"]


class Deployment:
    """``workers`` Uvicorn processes on ports of their own behind one nginx (``conf``
    makes its http block from its port and the workers' ports: :func:`proxy_conf` or
    :func:`documented_conf`). Workers can be killed, stopped and started again on their
    port, as a deploy or a crash does."""

    def __init__(
        self,
        servers: Servers,
        *,
        workers: int = 2,
        conf: Callable[[int, list[int]], str] = proxy_conf,
        uvicorn_options: tuple[str, ...] = (),
        name: str = "worker",
    ) -> None:
        self.servers = servers
        self.ports = [free_port() for _ in range(workers)]
        self.port = free_port()
        self.conf = conf
        self.uvicorn_options = uvicorn_options
        self.name = name
        self.nginx: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The site, through nginx."""
        return f"http://127.0.0.1:{self.port}"

    def worker_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def start(self) -> Deployment:
        for index in range(len(self.ports)):
            self.start_worker(index)
        http = self.conf(self.port, self.ports)
        name = f"nginx-{self.name}"
        command = nginx_command(self.servers.workdir, name, http)
        self.nginx = self.servers.start(name, command, self.port)
        return self

    def _worker(self, index: int) -> str:
        return f"{self.name}-{index}"

    def pid(self, index: int) -> int:
        return self.servers.processes[self._worker(index)].pid

    def start_worker(self, index: int, *, ready_within: float = 30) -> None:
        """Start the worker (again) on its port; back once its ``/health/ready`` says 200."""
        port = self.ports[index]
        command = uvicorn_command(port, *self.uvicorn_options)
        self.servers.start(self._worker(index), command, port)
        self.wait_ready(index, ready_within)

    def wait_ready(self, index: int, seconds: float = 30) -> dict[str, object]:
        """The worker's readiness, once it says it is ready."""
        deadline = time.monotonic() + seconds
        while True:
            answer = self.health(index, "ready")
            if answer is not None and answer.get("status") == "ready":
                return answer
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker {index} not ready after {seconds:g} s: {answer}")
            time.sleep(0.1)

    def health(self, index: int, which: str = "live") -> dict[str, object] | None:
        """The worker's ``/health/<which>`` answer (None when it does not answer)."""
        try:
            answer = requests.get(f"{self.worker_url(index)}/webcall/health/{which}", timeout=2)
        except requests.RequestException:
            return None
        body: dict[str, object] = answer.json()
        return body

    def kill(self, index: int) -> None:
        self.servers.kill(self._worker(index))

    def stop_worker(self, index: int, timeout: float = 60) -> int:
        """SIGTERM, and wait for it to drain and exit; its exit status."""
        return self.servers.stop(self._worker(index), timeout)

    def restart_worker(self, index: int) -> int:
        """One step of a rolling restart: SIGTERM, wait for the exit, start it again and
        wait until it is ready; the old process's exit status."""
        status = self.stop_worker(index)
        self.start_worker(index)
        return status
