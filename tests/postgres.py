"""PostgreSQL for the test suite (``WEBCALL_TEST_DB=postgres``).

The server is the one named by the standard libpq variables (``PGHOST``, default
127.0.0.1; ``PGPORT``, default 5432; ``PGUSER``, default postgres; ``PGPASSWORD``). When
nothing answers there, the suite starts its own throwaway cluster from Debian's
``postgresql`` packages (installed by scripts/install-system-deps), the same way
tests/test_multiprocess.py starts its own redis-server: on a free port, with its data in a
temporary directory, removed when the session ends.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any


def connection_settings() -> dict[str, str]:
    """Where the tests' PostgreSQL is, from the libpq variables or their defaults."""
    return {
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
    }


def answers(host: str, port: str) -> bool:
    """Whether something listens at ``host``:``port`` (or its Unix socket directory)."""
    try:
        if host.startswith("/"):
            with socket.socket(socket.AF_UNIX) as probe:
                probe.settimeout(1)
                probe.connect(f"{host}/.s.PGSQL.{port}")
        else:
            with socket.create_connection((host, int(port)), timeout=1):
                pass
    except OSError:
        return False
    return True


def _bindir() -> Path:
    """The newest PostgreSQL server binaries: Debian's, or initdb's on the PATH."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError(
        "no PostgreSQL answers and its server is not installed: run scripts/install-system-deps "
        "(make test does), or point PGHOST/PGPORT at a server"
    )


class Cluster:
    """A throwaway PostgreSQL cluster: initdb in a temporary directory, then postgres on a
    free port of 127.0.0.1, with trust auth and no durability (it is thrown away)."""

    def __init__(self) -> None:
        from tests.servers import free_port  # not at import: tests/settings.py imports this

        self.bindir = _bindir()
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="webcall-tests-pg-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.outage = (0.0, 0.0)
        # initdb and postgres refuse to run as root: as root, run them as the postgres
        # user (Debian's package creates it), in a directory it owns.
        self.user: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("no postgres user to run PostgreSQL as (not as root)") from None
            os.chown(self.base, account.pw_uid, account.pw_gid)
            self.user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def start(self) -> Cluster:
        data = self.base / "data"
        initdb = subprocess.run(
            [
                str(self.bindir / "initdb"),
                "--pgdata",
                str(data),
                "--username",
                "postgres",
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ],
            cwd=self.base,
            capture_output=True,
            text=True,
            **self.user,
        )
        if initdb.returncode != 0:
            self.stop()
            raise RuntimeError(f"initdb failed: {initdb.stderr}")
        try:
            self._serve()
        except BaseException:
            self.stop()
            raise
        return self

    def _serve(self) -> None:
        """postgres on the cluster's port, until it takes connections."""
        from tests.servers import wait_for_port

        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.base),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
        }
        options = [item for key, value in settings.items() for item in ("-c", f"{key}={value}")]
        log = self.base / "postgres.log"
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.base / "data")]
                + ["-p", str(self.port), *options],
                cwd=self.base,
                stdout=output,
                stderr=subprocess.STDOUT,
                **self.user,
            )
        try:
            wait_for_port(self.port, self.process, "postgres")
            self._wait_until_ready()
        except BaseException as exc:
            said = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the throwaway PostgreSQL did not start:\n{said}") from exc

    @property
    def url(self) -> str:
        """A libpq URL of the cluster's ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def restart(self, down_for: float = 0.0) -> None:
        """Stop the server as an operator's restart does (fast shutdown: clients are
        disconnected), wait ``down_for`` seconds, and start it again on the same port with
        the same data. ``outage`` says when it was down: from its stop to its start
        (``time.monotonic()``)."""
        self._halt()
        stopped = time.monotonic()
        time.sleep(down_for)
        self.outage = (stopped, time.monotonic())
        self._serve()

    def _wait_until_ready(self) -> None:
        """The port opens before the server takes connections ("starting up")."""
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(
                    host="127.0.0.1", port=self.port, user="postgres", dbname="postgres"
                ):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _halt(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: disconnects clients
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def stop(self) -> None:
        self._halt()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.base)


def admin(database: dict[str, Any], statement: str, name: str) -> None:
    """Run ``statement`` (CREATE or DROP DATABASE) with ``name`` quoted in its ``{}``, on the
    server of ``database`` (a ``DATABASES`` entry), outside any transaction."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host=database["HOST"],
        port=database["PORT"],
        user=database["USER"],
        password=database["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as connection:
        connection.execute(sql.SQL(statement).format(sql.Identifier(name)))


def ensure_server(database: dict[str, Any]) -> Cluster | None:
    """Use the configured server if it answers; otherwise start a throwaway cluster and
    point ``database`` (a ``DATABASES`` entry) and this process's environment, which the
    site processes some tests start inherit, at it. The cluster, for the caller to stop."""
    if answers(str(database["HOST"]), str(database["PORT"])):
        return None
    cluster = Cluster().start()
    database.update(HOST="127.0.0.1", PORT=str(cluster.port), USER="postgres", PASSWORD="")
    os.environ.update(PGHOST="127.0.0.1", PGPORT=str(cluster.port), PGUSER="postgres")
    os.environ.pop("PGPASSWORD", None)
    return cluster
