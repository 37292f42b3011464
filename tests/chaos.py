"""What the chaos tests (tests/test_chaos.py) and ``make bench-chaos`` (benchmarks/chaos.py)
share: the deployment they break and the visitors who talk through it.

:class:`Backing` is a PostgreSQL cluster and a redis-server of their own (never the
machine's shared ones: the tests restart them). :class:`ChaosSite` is the deployment page's
site on them (tests/deployment.py): two Uvicorn workers behind nginx with the page's
docs/examples/nginx.conf, and the VoiceHub sandbox in a process of its own, allowing a call
to be joined again (``rejoin``) or refusing it (the ``no-rejoin`` variant, with
``UPSTREAM.REJOIN`` "never" on the site, as the probe would suggest). nginx serves the
collected static files, so a browser can visit the widget on ``/?agent=<slug>``
(tests/browser/test_worker_lost.py). Two agents:

* ``chat``: the sandbox's echo agent, text calls; it answers "You said: <text>";
* ``voice``: its loopback agent, TextAudio calls: every audio frame comes straight back
  (so a missing frame is agent audio the visitor did not get), and typed messages are
  answered as by the echo agent.

:class:`Talk` keeps a visitor talking (tests/widget_client.py): a message, its answer, a
pause, again; with audio all along on a voice call.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.deployment import (
    ROOT,
    Deployment,
    Servers,
    documented_conf,
    fresh_database,
    site_environment,
)
from tests.postgres import Cluster
from tests.redis_server import RedisServer
from tests.servers import free_port
from tests.widget_client import FRAME_MS, Visitor

# What every module of chaos tests is marked with (pyproject.toml's markers): servers of its
# own, Redis, and a deployment it breaks, which make test runs once.
MARKS = [pytest.mark.slow, pytest.mark.chaos, pytest.mark.redis]
GREETING = "Hi! I'm the sandbox echo agent. Say something and I'll say it back."
THINK_SECONDS = (0.2, 0.6)  # a visitor's pause between an answer and their next message
END_CALL = "from webcall_widget.relay.mailbox import end_call; end_call('{}')"


def agents(chat_lines: int, voice_lines: int) -> str:
    """Python that creates the two agents, each with that many lines."""
    return (
        "from webcall_widget.models import Agent\n"
        "Agent.objects.create(name='Chat', slug='chat', voicehub_agent_id='echo-agent', "
        f"api_key='sandbox-key', modes=['text'], default_mode='text', "
        f"max_concurrent_calls={chat_lines})\n"
        "Agent.objects.create(name='Voice', slug='voice', voicehub_agent_id='loopback-agent', "
        "api_key='sandbox-key', modes=['TextAudio'], default_mode='TextAudio', "
        f"max_concurrent_calls={voice_lines})\n"
    )


class Backing:
    """PostgreSQL and Redis of the site's own, to restart at will."""

    def __init__(self) -> None:
        self.postgres = Cluster()
        self.redis = RedisServer()

    def __enter__(self) -> Backing:
        self.postgres.start()
        try:
            self.redis.start()
        except BaseException:
            self.postgres.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.redis.stop()
        self.postgres.stop()


class ChaosSite:
    """The site, its sandbox and its database, on ``backing``; a context manager."""

    def __init__(
        self,
        backing: Backing,
        workdir: Path,
        *,
        rejoin: bool = True,
        drain_seconds: float = 25,
        chat_lines: int = 100,
        voice_lines: int = 100,
    ) -> None:
        self.backing = backing
        self.workdir = workdir
        self.rejoin = rejoin
        self.drain_seconds = drain_seconds
        self.lines = (chat_lines, voice_lines)
        self._stack = contextlib.ExitStack()
        self.database = ""
        self.sandbox_url = ""
        self.servers: Servers | None = None
        self.workers: Deployment | None = None

    def __enter__(self) -> ChaosSite:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.database = self._stack.enter_context(
            fresh_database(self.backing.postgres.url, f"webcall_chaos_{uuid.uuid4().hex[:8]}")
        )
        self.servers = servers = Servers(self.workdir, {})
        self._stack.callback(servers.stop_all)
        port = free_port()
        variant = "default" if self.rejoin else "no-rejoin"
        sandbox = [sys.executable, "-m", "webcall_widget.sandbox", "--port", str(port)]
        sandbox += ["--variant", variant, "--word-delay", "0.02"]
        self.sandbox_url = f"http://127.0.0.1:{port}"
        servers.env = site_environment(
            self.workdir,
            self.sandbox_url,
            self.database,
            setup=agents(*self.lines),
            redis=self.backing.redis.url,
            rejoin="auto" if self.rejoin else "never",
            drain_seconds=f"{self.drain_seconds:g}",
            static_root=self.workdir / "static",
            log_level="INFO",
        )
        servers.start("sandbox", sandbox, port)
        conf = functools.partial(documented_conf, static_root=self.workdir / "static")
        self.workers = Deployment(servers, conf=conf).start()

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def url(self) -> str:
        assert self.workers is not None
        return self.workers.url

    def worker_socket_url(self, index: int) -> str:
        """Where a visitor's widget resumes to reach worker ``index`` itself, not whichever
        nginx picks. The agents take sockets from the site's pages there too (their Origin
        is nginx's: another host for the worker)."""
        assert self.workers is not None
        with psycopg.connect(self.database, autocommit=True) as db:
            db.execute("UPDATE webcall_widget_agent SET allowed_origins = %s", (self.url,))
        return "ws" + self.workers.worker_url(index).removeprefix("http") + "/ws/webcall/"

    def end_from_admin(self, call_id: str) -> bool:
        """Staff end the call as the admin does (a process of its own asks through the
        channel layer); whether the ask went out."""
        assert self.servers is not None
        asked = subprocess.run(
            [sys.executable, "-m", "django", "shell", "-v0", "-c", END_CALL.format(call_id)],
            env=self.servers.env,
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        return asked.returncode == 0

    def workers_by_process(self) -> dict[str, int]:
        """The index of each worker that answers, by its process's id (what a call's
        ``owner`` names)."""
        assert self.workers is not None
        ids = {}
        for index in range(len(self.workers.ports)):
            live = self.workers.health(index)
            if live is not None:
                ids[str(live["process"])] = index
        return ids

    def worker_of(self, call_id: str) -> int | None:
        """The index of the worker that holds the call (None: one that does not answer)."""
        return self.workers_by_process().get(self.call(call_id)["owner"])

    # what the database says

    def _query(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database, autocommit=True) as db:
            return db.execute(sql, params).fetchall()

    def call(self, call_id: str) -> dict[str, Any]:
        """The call's row: status, end_reason, owner, resumes, ended_at."""
        (row,) = self._query(
            "SELECT status, end_reason, owner, resumes, ended_at FROM webcall_widget_call "
            "WHERE id = %s",
            call_id,
        )
        fields = ("status", "end_reason", "owner", "resumes", "ended_at")
        return dict(zip(fields, row, strict=True))

    def transcript(self, call_id: str) -> list[tuple[str, str, bool]]:
        """The call's stored messages in order: (role, text, final)."""
        return [
            (role, text, final)
            for role, text, final in self._query(
                "SELECT role, text, final FROM webcall_widget_transcriptmessage "
                "WHERE call_id = %s ORDER BY seq",
                call_id,
            )
        ]

    def wait_ended(self, call_ids: list[str], seconds: float) -> dict[str, dict[str, Any]]:
        """The rows of ``call_ids``, once none of them is open (AssertionError after
        ``seconds``)."""
        deadline = time.monotonic() + seconds
        while True:
            rows = {call_id: self.call(call_id) for call_id in call_ids}
            if all(row["ended_at"] is not None for row in rows.values()):
                return rows
            open_ = {call_id: row for call_id, row in rows.items() if not row["ended_at"]}
            assert time.monotonic() < deadline, open_
            time.sleep(0.2)


class Talk:
    """A visitor on ``site`` who talks until :meth:`stop`: a message, its answer, a pause;
    on a voice call, audio all along. ``said`` is every message typed, in order;
    ``unanswered`` those whose answer did not come within ``patience`` seconds (the
    visitor then goes on); ``exchanges`` when each answered message was typed and when its
    answer came (``time.monotonic()``)."""

    def __init__(
        self, site_url: str, slug: str, mode: str, name: str, *, patience: float = 20
    ) -> None:
        self.visitor = Visitor(site_url, slug, mode, name=name)
        self.patience = patience
        self.said: list[str] = []
        self.unanswered: list[str] = []
        self.exchanges: list[tuple[float, float]] = []
        self._stop = asyncio.Event()
        self._go = asyncio.Event()
        self._go.set()
        self.holding = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def voice(self) -> bool:
        return self.visitor.mode != "text"

    async def start(self) -> None:
        await self.visitor.start()
        await self.visitor.wait_for(lambda: bool(self.visitor.conversation()), 20)  # greeting
        if self.voice:
            self.visitor.speak()
        self._task = asyncio.create_task(self._talk(), name=f"talk-{self.visitor.name}")

    async def _talk(self) -> None:
        visitor = self.visitor
        while not self._stop.is_set():
            if not self._go.is_set():
                self.holding.set()
                await self._go.wait()
                self.holding.clear()
                continue
            text = f"{visitor.name} says {len(self.said) + 1}"
            self.said.append(text)
            typed_at = time.monotonic()
            await visitor.say(text)
            try:
                if not await visitor.answer_to(text, within=self.patience):
                    return  # the call is over
                self.exchanges.append((typed_at, time.monotonic()))
            except TimeoutError:
                self.unanswered.append(text)
            await asyncio.sleep(random.uniform(*THINK_SECONDS))

    def hold(self) -> None:
        """Finish the exchange under way, then wait (``holding``) until :meth:`go_on`."""
        self._go.clear()

    def go_on(self) -> None:
        self._go.set()

    async def stop(self) -> None:
        """Finish the exchange under way, stop the audio (and wait for its last frames)."""
        self._stop.set()
        self._go.set()
        if self._task is not None:
            await self._task
        if self.voice:
            await self.visitor.quiet()
            await asyncio.sleep(0.3)

    def expected(self) -> list[tuple[str, str]]:
        """The conversation as it should read: the greeting, then each message and its
        answer."""
        lines = [("agent", GREETING)]
        for text in self.said:
            lines += [("user", text), ("agent", f"You said: {text}")]
        return lines

    def timeline(self, since: float) -> str:
        """What happened to the call, for a failing test's message: each event, seconds
        after ``since``."""
        visitor = self.visitor
        events = ", ".join(
            f"{e.at - since:.2f} {e.kind}{'' if e.detail is None else f' {e.detail}'}"
            for e in visitor.events
        )
        audio = ""
        if self.voice:
            audio = f"; audio missed {self.missing_audio_ms():.0f} ms"
        return f"{visitor.name} ({visitor.call_id}, {visitor.phase}): {events}{audio}"

    def missing_audio_ms(self) -> float:
        """Agent audio the visitor did not get: frames captured and never heard back."""
        audio = self.visitor.audio
        return sum(seq not in audio.heard for seq in audio.captured) * FRAME_MS

    def answered_between(self, start: float, end: float) -> int:
        """Answers that came between ``start`` and ``end``."""
        return sum(start <= answered <= end for _, answered in self.exchanges)

    def heard_between(self, start: float, end: float) -> int:
        """Frames of agent audio heard between ``start`` and ``end``."""
        return sum(start <= at <= end for at in self.visitor.audio.heard.values())

    def longest_wait_ms(self) -> float:
        """The longest a typed message waited for its answer."""
        return max((b - a for a, b in self.exchanges), default=0.0) * 1000

    def longest_silence_ms(self) -> float:
        """The longest wait between two frames of agent audio."""
        heard = sorted(self.visitor.audio.heard.values())
        return max((b - a for a, b in zip(heard, heard[1:], strict=False)), default=0.0) * 1000


async def talking(site: ChaosSite, chats: int, voices: int, *, tag: str) -> list[Talk]:
    """``chats`` text and ``voices`` voice visitors, each in a call and talking."""
    talks = [Talk(site.url, "chat", "text", f"{tag}c{n}") for n in range(chats)]
    talks += [Talk(site.url, "voice", "TextAudio", f"{tag}v{n}") for n in range(voices)]
    for batch in range(0, len(talks), 10):
        await asyncio.gather(*(talk.start() for talk in talks[batch : batch + 10]))
    return talks


async def hang_up(talks: list[Talk], within: float = 20) -> None:
    """Every visitor stops talking, and those still in their call hang up; the calls not
    over ``within`` seconds after are named, each with its story (seconds from the hang-up:
    the workers' logs have the relay's side at the same moments)."""
    await asyncio.gather(*(talk.stop() for talk in talks))
    still = [talk for talk in talks if not talk.visitor.done.is_set()]
    hung_up, clock = time.monotonic(), time.strftime("%H:%M:%S")
    outcomes = await asyncio.gather(
        *(talk.visitor.hang_up(within) for talk in still), return_exceptions=True
    )
    stuck = []
    for talk, outcome in zip(still, outcomes, strict=True):
        if isinstance(outcome, TimeoutError):
            stuck.append(talk.timeline(hung_up))
        elif isinstance(outcome, BaseException):
            raise outcome
    assert not stuck, f"hung up at {clock}, not over {within:g} s later: " + "; ".join(stuck)


@contextlib.contextmanager
def both_workers_after(site: ChaosSite) -> Iterator[None]:
    """Whatever was done to them meanwhile, both workers serve again afterwards."""
    try:
        yield
    finally:
        assert site.workers is not None and site.servers is not None
        for index in range(len(site.workers.ports)):
            if f"worker-{index}" not in site.servers.processes:
                site.workers.start_worker(index)


async def hush(talks: list[Talk]) -> None:
    """Until :func:`speak_on`: no typed message on its way anywhere. Each visitor finishes
    the exchange under way and waits, and what was said has had time to be written."""
    for talk in talks:
        talk.hold()
    await asyncio.gather(*(talk.holding.wait() for talk in talks))
    await asyncio.sleep(0.5)


def speak_on(talks: list[Talk]) -> None:
    for talk in talks:
        talk.go_on()


def figures(values: list[float], digits: int = 0) -> str:
    """min / median / max."""
    if not values:
        return "-"
    return " / ".join(
        f"{v:.{digits}f}" for v in (min(values), statistics.median(values), max(values))
    )


@dataclass
class Placed:
    """Which worker holds each visitor's call, from the calls' owners."""

    by_worker: dict[int, list[Talk]]

    @classmethod
    def find(cls, site: ChaosSite, talks: list[Talk]) -> Placed:
        ids = site.workers_by_process()
        placed: dict[int, list[Talk]] = {index: [] for index in ids.values()}
        for talk in talks:
            placed[ids[site.call(talk.visitor.call_id)["owner"]]].append(talk)
        return cls(placed)
