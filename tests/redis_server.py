"""A Redis server for the tests that need one: the one on 127.0.0.1:6379 if it answers,
otherwise one of their own (redis-server from Debian, installed by
scripts/install-system-deps), stopped afterwards."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator

from tests.servers import free_port, wait_for_port


def redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def running_redis() -> Iterator[str]:
    """The server's URL (database 0)."""
    if redis_answers(6379):
        yield "redis://127.0.0.1:6379/0"
        return
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
        + ["--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, server, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)
