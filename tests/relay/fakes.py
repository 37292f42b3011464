"""In-memory stand-ins for the three things a bridge talks to: the browser, the upstream
session and the recorder. Each can be told to fail, so that the bridge's ending is tested
against every step going wrong (a real database or socket cannot be made to fail on cue)."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from channels.layers import InMemoryChannelLayer

from webcall_widget.relay.records import CallInfo, Counters, NewMessage, Outcome
from webcall_widget.voicehub.errors import UpstreamClosed
from webcall_widget.voicehub.events import Joined, UpstreamEvent


class Broken(Exception):
    """What a fake raises when told to fail."""


def make_call(**fields: Any) -> CallInfo:
    values: dict[str, Any] = {
        "call_id": uuid.uuid4(),
        "agent_id": 1,
        "mode": "text",
        "status": "connecting",
        "voicehub_call_id": "vh-1",
        "upstream_url": "http://voicehub.invalid",
        "upstream_socket_path": "/socket",
        "agent_active": True,
        "agent_origins": (),
        "access": "anyone",
        "user_id": None,
        "max_call_seconds": 900,
        "idle_seconds": 120,
    }
    values.update(fields)
    return CallInfo(**values)


class FakeBrowser:
    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.audio: list[bytes] = []
        self.closed_with: int | None = None
        self.closed = asyncio.Event()

    async def send_text(self, frame: str) -> None:
        self.frames.append(json.loads(frame))

    async def send_bytes(self, data: bytes) -> None:
        self.audio.append(data)

    async def close(self, code: int) -> None:
        self.closed_with = code
        self.closed.set()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == kind]


class FakeUpstream:
    """An upstream session fed by the test through :meth:`push`."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[UpstreamEvent | Exception] = asyncio.Queue()
        self.sent: list[tuple[str, Any]] = []
        self.fail_close = False
        self.aborted = False
        self.closed = False
        self.backlogged = False  # VoiceHub reads slower than audio comes: audio is dropped
        self.fail_send: Exception | None = None  # what sending text raises
        self.join_held: asyncio.Event | None = None  # the join is confirmed once it is set

    def push(self, event: UpstreamEvent | Exception) -> None:
        self.events.put_nowait(event)

    async def recv(self) -> UpstreamEvent:
        event = await self.events.get()
        if isinstance(event, Exception):
            raise event
        return event

    async def join(self, call_id: str, channels: tuple[str, ...]) -> None:
        self.sent.append(("join", channels))
        self.push(Joined(channels))

    async def join_confirmed(
        self, call_id: str, channels: tuple[str, ...], *, seconds: float, under_way: bool = False
    ) -> list[UpstreamEvent]:
        """As the real session: join, and the events that came before the confirmation."""
        self.sent.append(("rejoin" if under_way else "join", channels))
        if self.join_held is not None:
            await self.join_held.wait()
        self.push(Joined(channels))
        held: list[UpstreamEvent] = []
        async with asyncio.timeout(seconds):
            while not isinstance(event := await self.recv(), Joined):
                held.append(event)
        return held

    async def leave(self, call_id: str, channels: tuple[str, ...]) -> None:
        self.sent.append(("leave", channels))

    async def send_text(self, call_id: str, text: str) -> None:
        if self.closed:
            raise UpstreamClosed("closed")
        if self.fail_send is not None:
            raise self.fail_send
        self.sent.append(("text", text))

    async def send_audio(self, pcm: bytes) -> bool:
        if self.backlogged:
            return False
        self.sent.append(("audio", len(pcm)))
        return True

    async def close(self) -> None:
        if self.fail_close:
            raise Broken("the upstream would not close")
        self.closed = True

    async def abort(self) -> None:
        self.aborted = True


@dataclass
class FakeRecorder:
    """Records in memory; ``fail`` names the methods that raise, with how many times
    (``-1``: always)."""

    live: list[uuid.UUID] = field(default_factory=list)
    messages: list[NewMessage] = field(default_factory=list)
    ended: list[Outcome] = field(default_factory=list)
    budget_spent_at: float | None = None  # loop time at which the agent's budget runs out
    fail: dict[str, int] = field(default_factory=dict)
    counters: list[Counters] = field(default_factory=list)
    read_seconds: float = 0.0  # how long reading the transcript takes

    def _maybe_fail(self, method: str) -> None:
        left = self.fail.get(method, 0)
        if left:
            self.fail[method] = left - 1 if left > 0 else left
            raise Broken(f"{method} failed (database is locked)")

    async def mark_live(self, call_id: uuid.UUID) -> None:
        self._maybe_fail("mark_live")
        self.live.append(call_id)

    async def add_messages(self, call_id: uuid.UUID, messages: list[NewMessage]) -> None:
        self._maybe_fail("add_messages")
        self.messages.extend(messages)

    async def finish(
        self, call_id: uuid.UUID, outcome: Outcome, counters: Counters, *, owner: str = ""
    ) -> None:
        self._maybe_fail("finish")
        self.ended.append(outcome)
        self.counters.append(counters)

    async def budget_seconds_left(self, call: CallInfo) -> float | None:
        self._maybe_fail("budget_seconds_left")
        if self.budget_spent_at is None:
            return None
        return self.budget_spent_at - asyncio.get_running_loop().time()

    owner: str = ""  # who owns the call now, as the database would say

    async def owner_of(self, call_id: uuid.UUID) -> str:
        self._maybe_fail("owner_of")
        return self.owner

    async def load_transcript(self, call_id: uuid.UUID) -> list[NewMessage]:
        await asyncio.sleep(self.read_seconds)
        self._maybe_fail("load_transcript")
        return list(self.messages)


class BreakableLayer(InMemoryChannelLayer):
    """The in-memory layer, whose methods named in ``failing`` fail like a Redis that
    went away."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.failing: set[str] = set()

    def _maybe_fail(self, method: str) -> None:
        if method in self.failing:
            raise Broken("Redis went away")

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        self._maybe_fail("send")
        await super().send(channel, message)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        self._maybe_fail("group_send")
        await super().group_send(group, message)

    async def receive(self, channel: str) -> dict[str, Any]:
        self._maybe_fail("receive")
        return await super().receive(channel)

    async def group_add(self, group: str, channel: str) -> None:
        self._maybe_fail("group_add")
        await super().group_add(group, channel)


class CountingLayer(BreakableLayer):
    """The breakable in-memory layer, counting the receives that were cancelled: on
    channels_redis, cancelling one can lose a message of the process's other channels
    (:class:`webcall_widget.channel_layers.ChannelReader`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cancelled = 0

    async def receive(self, channel: str) -> dict[str, Any]:
        try:
            return await super().receive(channel)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
