"""A Redis server for the tests that need one: the one on 127.0.0.1:6379 if it answers,
otherwise one of their own (redis-server from Debian, installed by
scripts/install-system-deps), stopped afterwards. :class:`RedisServer` is always one of
their own, for tests that restart it."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator

from tests.servers import free_port, wait_for_port


def redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A private redis-server on a free port, keeping nothing on disk: restarted, it comes
    back empty, as a Redis without persistence does."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.outage = (0.0, 0.0)

    @property
    def url(self) -> str:
        """Its URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.port, self.process, "redis-server")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def restart(self, down_for: float = 0.0) -> None:
        """Stop it, wait ``down_for`` seconds, start it again on the same port (empty).
        ``outage`` says when it was down: from its stop to its start (``time.monotonic()``)."""
        self.stop()
        stopped = time.monotonic()
        time.sleep(down_for)
        self.outage = (stopped, time.monotonic())
        self.start()


@contextlib.contextmanager
def running_redis() -> Iterator[str]:
    """The server's URL (database 0)."""
    if redis_answers(6379):
        yield "redis://127.0.0.1:6379/0"
        return
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()
