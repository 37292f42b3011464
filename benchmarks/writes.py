"""What a call writes to Redis and PostgreSQL, for the capacity model (docs/performance.md).

:class:`Writes` counts the Redis commands on one database (Redis's ``MONITOR`` stream,
which names each command's database) and PostgreSQL's committed transactions and rows
written on one database (``pg_stat_database``), at the moments the load run marks: before
the calls open, while they talk, after they end. PostgreSQL publishes a connection's
counts when it is idle for a while, so the last look waits for that.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg
import redis

# PostgreSQL 15 flushes an idle backend's statistics after at most 10 s (PGSTAT_IDLE_INTERVAL).
STATS_DELAY_SECONDS = 11.0


@dataclass(frozen=True)
class Counts:
    redis_commands: int
    transactions: int
    rows_written: int

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.redis_commands - other.redis_commands,
            self.transactions - other.transactions,
            self.rows_written - other.rows_written,
        )

    def times(self, factor: float) -> Counts:
        return Counts(
            round(self.redis_commands * factor),
            round(self.transactions * factor),
            round(self.rows_written * factor),
        )


class Writes:
    def __init__(self, redis_url: str, postgres_url: str) -> None:
        self._db = int(urlsplit(redis_url).path.lstrip("/") or 0)
        self._redis = redis.Redis.from_url(redis_url)
        self._postgres = psycopg.connect(postgres_url, autocommit=True)
        self._commands = 0
        self._monitoring = threading.Event()
        threading.Thread(target=self._monitor, daemon=True).start()
        self._monitoring.wait(5)

    def _monitor(self) -> None:
        with self._redis.monitor() as monitor:
            self._monitoring.set()
            for command in monitor.listen():
                if command.get("db") == self._db:
                    self._commands += 1

    def counts(self) -> Counts:
        row = self._postgres.execute(
            "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted "
            "FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        assert row is not None
        return Counts(self._commands, int(row[0]), int(row[1]))


@dataclass(frozen=True)
class Report:
    voice_calls: int
    text_calls: int
    seconds: float
    opening_and_ending: Counts  # all the calls', less what they wrote while they talked
    talking: Counts

    def lines(self) -> list[str]:
        calls = self.voice_calls + self.text_calls
        minutes = self.seconds / 60
        each = self.opening_and_ending
        talk = self.talking
        return [
            f"What {self.voice_calls} voice and {self.text_calls} text calls wrote (the text "
            "calls send a message a second, which the agent answers):",
            f"  per call, to open and end it: {each.redis_commands / calls:.1f} Redis commands, "
            f"{each.transactions / calls:.1f} PostgreSQL transactions (reads too), "
            f"{each.rows_written / calls:.1f} rows",
            f"  per minute while they talk, all {calls} calls: "
            f"{talk.redis_commands / minutes:.0f} Redis commands, "
            f"{talk.transactions / minutes:.0f} PostgreSQL transactions (reads too), "
            f"{talk.rows_written / minutes:.0f} rows",
        ]


def settle() -> None:
    time.sleep(STATS_DELAY_SECONDS)
