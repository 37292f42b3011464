"""What the sandbox has seen and been told to do, readable from other threads.

Tests run the sandbox in a server thread and wait here for what it recorded (events in
and out, calls created, disconnects) instead of sleeping. :class:`Faults` are switches a
test flips to make the sandbox misbehave over its real sockets.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from webcall_widget.voicehub.events import Mode


@dataclass
class Faults:
    """Ways to make the sandbox misbehave; all off by default."""

    # create-web-call
    create_status: int | None = None  # answer with this status (and a JSON error body)
    create_delay: float = 0.0  # seconds to wait before answering
    create_body: bytes | None = None  # answer 201 with exactly these bytes
    # the live socket
    refuse_socket: bool = False  # refuse the Socket.IO connection
    join_silent: bool = False  # never answer channel.join
    drop_on_text: str | None = None  # drop the socket, without call.ended, on this text
    stall: bool = False  # send nothing, heartbeats and closes included: a frozen network
    deaf: bool = False  # read nothing more from the sockets: slower than the audio comes
    # on the socket that receives this text, the next frame sent is garbage
    corrupt_after_text: str | None = None
    # a behaviour VoiceHub may have: announce typed visitor text as a user ``created``
    echo_user_text: bool = False
    hangup_reason: str = "agent-hangup"  # the reason in call.ended when the agent hangs up
    # on this text, a burst of error events, unknown events and an unreadable message
    flood_on_text: str | None = None
    # webhooks: take the next N answers to deliveries as lost (as if the network dropped
    # them), so the sandbox posts those events again, as VoiceHub retries
    webhook_lose_answers: int = 0
    # the analysis endpoint answers 503 to the next N fetches
    analysis_fail_first: int = 0

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


@dataclass
class Wire:
    """One socket's own switch, so that a fault meant for one call never lands on another
    socket still open from an earlier one."""

    corrupt_next_frame: bool = False


@dataclass
class SandboxCall:
    call_id: str
    agent_id: str
    mode: Mode
    api_key: str
    created_at: float = field(default_factory=time.monotonic)
    joined: tuple[str, ...] = ()
    ended: str | None = None
    # the sandbox's base URL as the caller reached it (for the URLs in webhooks), and the
    # site that called (where a webhook path is posted)
    base_url: str = ""
    site: str = ""
    live_at: float | None = None
    said: list[str] = field(default_factory=list)  # the visitor's messages
    interruptions: int = 0
    finished: bool = False  # the end's webhooks are sent
    # What outlives one socket: the agent's message count (its ids go on), the
    # conversation that holds the call (None while nobody does), when its socket was lost
    # (None: it was not), and how many sockets joined it after the first.
    turns: int = 0
    holder: Any = field(default=None, repr=False, compare=False)
    lost_at: float | None = None
    rejoins: int = 0


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """Where the sandbox posts its webhooks: a URL, or a path on the site that created the
    call; and the secret it sends in ``x-webhook-secret``."""

    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt to post a webhook: the HTTP status answered (None: no answer), or why
    it failed; ``lost``: answered, but taken as lost (``Faults.webhook_lose_answers``)."""

    event_id: str
    event_type: str
    call_id: str
    attempt: int
    status: int | None
    error: str = ""
    lost: bool = False

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and not self.lost


@dataclass(frozen=True, slots=True)
class Record:
    """One thing that crossed the sandbox's socket: ``direction`` is "in" or "out"."""

    call_id: str | None
    direction: str
    event: str
    data: Any


class SandboxState:
    def __init__(self) -> None:
        self.faults = Faults()
        self.calls: dict[str, SandboxCall] = {}
        self.records: list[Record] = []
        self.connections = 0
        self.disconnections = 0
        self.audio_in: dict[str, int] = {}  # bytes per call; frames are not recorded one by one
        self.audio_in_sizes: set[int] = set()  # the lengths of the visitor's frames, all calls
        self.audio_out: dict[str, int] = {}
        # webhooks: where they go (None: SandboxConfig's webhook_url), each attempt, and
        # the analyses served; ``generation`` drops deliveries queued before a reset
        self.webhook: WebhookTarget | None = None
        self.deliveries: list[Delivery] = []
        self.analyses: dict[str, dict[str, Any]] = {}
        self.analysis_fetches = 0
        self.generation = 0
        self._changed = threading.Condition()

    def changed(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def add_call(self, call: SandboxCall) -> None:
        with self._changed:
            self.calls[call.call_id] = call
            self._changed.notify_all()

    def record(self, call_id: str | None, direction: str, event: str, data: Any) -> None:
        with self._changed:
            self.records.append(Record(call_id, direction, event, data))
            self._changed.notify_all()

    def count_audio(self, call_id: str, direction: str, size: int) -> None:
        with self._changed:
            counters = self.audio_in if direction == "in" else self.audio_out
            if direction == "in":
                self.audio_in_sizes.add(size)
            counters[call_id] = counters.get(call_id, 0) + size
            self._changed.notify_all()

    def record_delivery(self, delivery: Delivery) -> None:
        with self._changed:
            self.deliveries.append(delivery)
            self._changed.notify_all()

    def count_analysis_fetch(self) -> None:
        with self._changed:
            self.analysis_fetches += 1
            self._changed.notify_all()

    def delivered(self, event_type: str | None = None) -> list[Delivery]:
        """The deliveries that succeeded, of one type or all."""
        with self._changed:
            return [
                d
                for d in self.deliveries
                if d.delivered and (event_type is None or d.event_type == event_type)
            ]

    def count_connection(self, *, opened: bool) -> None:
        with self._changed:
            if opened:
                self.connections += 1
            else:
                self.disconnections += 1
            self._changed.notify_all()

    def events(self, call_id: str | None = None, direction: str | None = None) -> list[Record]:
        with self._changed:
            return [
                r
                for r in self.records
                if (call_id is None or r.call_id == call_id)
                and (direction is None or r.direction == direction)
            ]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Block until ``predicate()`` is truthy and return it; ``TimeoutError`` if never."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the sandbox never reached the expected state")
                self._changed.wait(remaining)

    async def await_for(self, predicate: Callable[[], Any], seconds: float = 5.0) -> Any:
        """``wait_for`` for async tests, without blocking their event loop."""
        return await asyncio.to_thread(self.wait_for, predicate, seconds)

    def reset(self) -> None:
        with self._changed:
            self.faults.reset()
            self.calls.clear()
            self.records.clear()
            self.connections = 0
            self.disconnections = 0
            self.audio_in.clear()
            self.audio_in_sizes.clear()
            self.audio_out.clear()
            self.webhook = None
            self.deliveries.clear()
            self.analyses.clear()
            self.analysis_fetches = 0
            self.generation += 1
