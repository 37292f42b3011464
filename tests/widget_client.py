"""A visitor's widget as a program: the browser wire protocol over a real WebSocket, with
what the widget does when its socket goes (docs/widget.md, "The resume flow"; the rules are
webcall_widget/static/webcall_widget/connection.js's):

* a call starts on a start socket (``{"type": "start", "mode": ...}``, then ``ready``); a
  start socket sent on (4013, a stopping process) or closed by a server that stopped just
  after it took the socket (1012, 4012 under Daphne) connects again to the same URL, up to
  five times, 0.25 s more apart each time;
* a live call whose socket closes without ``ended`` (1006, 4013, any code the widget does
  not name) resumes with its token: at once, then after 0.5, 1, 2 and 4 s (each ±20 %),
  until the token's seconds have passed; a code the widget names (1012, 44xx) fails it;
* every message typed carries an id and waits in an outbox until the relay confirms it (a
  user ``message`` with its id, or a replay that has it); what was sent but not confirmed
  when the socket went is sent again after the replay;
* audio captured while no socket is open waits, 100 frames at most (the oldest go first),
  and goes out when a socket opens.

What it saw is kept for the chaos tests and ``make bench-chaos`` to judge: the
conversation as the widget shows it (one entry per message id, in the order ids first came,
each with its latest text), every socket's end, every ``ready`` and error, and the agent's
audio frames as they came. Audio frames carry their sequence number in their first four
bytes; the sandbox's ``loopback-agent`` plays every frame back as it comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Origin

from webcall_widget.relay.protocol import CLOSE_CODE_ERRORS, CloseCode

RECONNECT_DELAYS = (0.0, 0.5, 1.0, 2.0, 4.0)
EARLY_FRAMES = 100
CONNECT_TIMEOUT = 8.0
FRAME_MS = 20
FRAME_BYTES = 640  # 20 ms of PCM16 at 16 kHz
SEQUENCE = struct.Struct("<I")
# Close codes the widget's config names: each fails the call (docs/widget.md, "Close codes").
FAILING = frozenset(int(code) for code in CLOSE_CODE_ERRORS)
# A new call's socket closed with these connects again: MOVING, and those it reads as a restart.
STARTS_AGAIN = frozenset(
    [CloseCode.MOVING, *(int(c) for c, name in CLOSE_CODE_ERRORS.items() if name == "restarting")]
)

_ids = itertools.count(1)


def audio_frame(seq: int) -> bytes:
    return SEQUENCE.pack(seq) + bytes(FRAME_BYTES - SEQUENCE.size)


@dataclass
class Event:
    at: float  # time.monotonic()
    kind: str  # "ready", "resumed", "closed", "error", "ended", "reconnecting", "lost", "hung up"
    detail: Any = None


@dataclass
class Shown:
    role: str
    text: str
    final: bool


@dataclass
class Audio:
    """The visitor's frames sent (sequence -> when) and the agent's received (sequence ->
    when it arrived); a frame captured while no socket was open is sent when one opens."""

    captured: dict[int, float] = field(default_factory=dict)
    heard: dict[int, float] = field(default_factory=dict)
    heard_twice: int = 0


class Visitor:
    """One visitor's widget on the site at ``site_url``, calling agent ``slug`` in ``mode``.

    ``start()`` makes the call, ``say()`` types a message, ``speak()`` streams audio in
    20 ms frames until ``quiet()``, ``hang_up()`` ends the call. ``done`` is set once the
    call is over for the widget (ended, failed or lost)."""

    def __init__(self, site_url: str, slug: str, mode: str, *, name: str = "") -> None:
        self.site_url = site_url
        self.slug = slug
        self.mode = mode
        self.name = name or f"visitor-{next(_ids)}"
        ws_url = "ws" + site_url.removeprefix("http")
        self.start_url = f"{ws_url}/ws/webcall/start/{slug}/"
        self.resume_prefix = f"{ws_url}/ws/webcall/"
        self.phase = "idle"  # calling, live, reconnecting, ending, ended, failed, lost
        self.call_id = ""
        self.token = ""
        self.token_seconds = 0
        self.view: dict[str, Shown] = {}
        self.outbox: dict[str, list[Any]] = {}  # id -> [text, sent on the current socket]
        self.events: list[Event] = []
        self.audio = Audio()
        self.ended_reason = ""
        self.failure = ""
        self.done = asyncio.Event()
        self._changed = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._early: deque[bytes | str] = deque()
        self._ended = False
        self._task: asyncio.Task[None] | None = None
        self._speaker: asyncio.Task[None] | None = None
        self._sent = itertools.count(1)
        # False: when the socket drops, the visitor is gone too (their browser crashed,
        # their network went), and never comes back.
        self.comes_back = True

    # what the visitor does

    async def start(self, within: float = 20) -> None:
        """Start the call; back once it is live."""
        self.phase = "calling"
        self._early.appendleft(json.dumps({"type": "start", "mode": self.mode}))
        self._task = asyncio.create_task(self._run(), name=f"widget-{self.name}")
        await self.wait_for(lambda: self.phase != "calling", within)
        if self.phase != "live":
            raise AssertionError(f"{self.name}: the call did not start: {self.failure}")

    async def say(self, text: str) -> str:
        """Type ``text``; its id. Sent now if the socket is open, else when one is."""
        message_id = f"w{self.name}-{next(self._sent)}"
        sent = self._open() and self.phase == "live"
        self.outbox[message_id] = [text, sent]
        if sent:
            await self._send(json.dumps({"type": "text", "text": text, "id": message_id}))
        return message_id

    async def answer_to(self, text: str, within: float = 30) -> bool:
        """Wait until the agent's finished answer to ``text`` ("You said: <text>") shows;
        False when the call was over first."""
        expected = f"You said: {text}"

        def answered() -> bool:
            return any(s.final and s.text == expected for s in self.view.values())

        await self.wait_for(lambda: answered() or self.done.is_set(), within)
        return answered()

    def speak(self) -> None:
        """From now on a frame every 20 ms, numbered from 0, until :meth:`quiet`."""
        self._speaker = asyncio.create_task(self._speak(), name=f"widget-{self.name}-mic")

    async def quiet(self) -> None:
        speaker, self._speaker = self._speaker, None
        if speaker is not None:
            speaker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await speaker

    async def hang_up(self, within: float = 20) -> None:
        await self.quiet()
        self.phase = "ending"
        self._note("hung up", "sent" if self._open() else "waits for the socket")
        await self._send(json.dumps({"type": "end"}))
        await self.wait_for(self.done.is_set, within)

    async def abandon(self) -> None:
        """The visitor closes the tab: the socket goes without an ``end``, and nothing
        comes back."""
        await self.quiet()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._ws is not None:
            await self._ws.close()
        self.phase = "gone"
        self.done.set()

    def drop(self) -> None:
        """The network drops the socket: it goes without a close frame, and the widget
        resumes as after any drop."""
        if self._ws is not None:
            self._ws.transport.abort()

    async def wait_for(self, condition: Any, within: float) -> None:
        """Until ``condition()`` holds (looked at after every frame and socket change);
        TimeoutError after ``within`` seconds."""
        async with asyncio.timeout(within):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    # what it saw

    def conversation(self) -> list[tuple[str, str]]:
        """The finished messages as the widget shows them, in order: (role, text)."""
        return [(s.role, s.text) for s in self.view.values() if s.final]

    def partial(self) -> list[str]:
        """Texts still shown as being written."""
        return [s.text for s in self.view.values() if not s.final]

    def when(self, kind: str) -> list[float]:
        return [e.at for e in self.events if e.kind == kind]

    # the connection

    def _open(self) -> bool:
        return self._ws is not None

    async def _send(self, frame: bytes | str) -> None:
        ws = self._ws
        if ws is None:
            return
        with contextlib.suppress(ConnectionClosed):
            await ws.send(frame)

    def _note(self, kind: str, detail: Any = None) -> None:
        self.events.append(Event(time.monotonic(), kind, detail))
        self._changed.set()

    async def _speak(self) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        for seq in itertools.count():
            delay = began + seq * FRAME_MS / 1000 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = audio_frame(seq)
            self.audio.captured[seq] = time.monotonic()
            if self._open() and self.phase not in ("idle", "calling"):
                await self._send(frame)
            else:
                self._early.append(frame)
                audio = [f for f in self._early if isinstance(f, bytes)]
                if len(audio) > EARLY_FRAMES:
                    self._early.remove(audio[0])

    async def _run(self) -> None:
        url, moves, attempt, deadline = self.start_url, 0, 0, 0.0
        while True:
            code = await self._connection(url)
            if code in STARTS_AGAIN and self.phase == "calling" and moves < 5:
                moves += 1
                self._early.appendleft(json.dumps({"type": "start", "mode": self.mode}))
                await asyncio.sleep(0.25 * moves)
                continue
            if code == CloseCode.NORMAL and self._ended:
                self.phase = "ended"
                break
            if code not in FAILING and self.phase in ("live", "reconnecting") and self.token:
                if not self.comes_back:
                    self.phase = "gone"
                    break
                if self.phase == "live":
                    for entry in self.outbox.values():
                        entry[1] = False  # it may not have arrived
                    self.phase = "reconnecting"
                    deadline = time.monotonic() + self.token_seconds
                    attempt = 2 if code == 1001 else 0
                    self._note("reconnecting", code)
                left = deadline - time.monotonic()
                if left <= 0 and attempt > 0:
                    self.phase = "lost"
                    self._note("lost")
                    break
                base = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
                attempt += 1
                await asyncio.sleep(max(0.0, min(base * random.uniform(0.8, 1.2), left)))
                url = f"{self.resume_prefix}{self.token}/"
                continue
            self.phase = "failed"
            self.failure = self.failure or f"closed {code}"
            break
        self.done.set()
        self._changed.set()

    async def _connection(self, url: str) -> int:
        """One socket, from its opening to its close: the close code (1006 for a socket
        that never opened or closed without a close frame)."""
        try:
            ws = await connect(
                url,
                origin=Origin(self.site_url),
                open_timeout=CONNECT_TIMEOUT,
                ping_interval=None,
                compression=None,
            )
        except (OSError, InvalidHandshake, TimeoutError):
            self._note("closed", 1006)
            return 1006
        self._ended = False
        try:
            while self._early:  # what waited goes first; the microphone waits meanwhile
                await ws.send(self._early.popleft())
        except ConnectionClosed:
            pass
        self._ws = ws
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    self._heard(message)
                else:
                    await self._frame(json.loads(message))
        except ConnectionClosed:
            pass
        finally:
            self._ws = None
        code = ws.close_code or 1006
        self._note("closed", code)
        return code

    def _heard(self, frame: bytes) -> None:
        seq = SEQUENCE.unpack_from(frame)[0]
        if seq in self.audio.heard:
            self.audio.heard_twice += 1
        else:
            self.audio.heard[seq] = time.monotonic()

    async def _frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "ready":
            self.call_id = frame["call"]
            resume = frame.get("resume") or {}
            self.token = resume.get("token", "")
            self.token_seconds = resume.get("seconds", 0)
            self._note("resumed" if frame.get("resumed") else "ready")
            if self.phase == "ending":  # hung up while the socket went: say so again
                await self._send(json.dumps({"type": "end"}))
            else:
                self.phase = "live"
        elif kind == "transcript":
            for message in frame["messages"]:
                self._show(message)
            for message_id, entry in self.outbox.items():
                if not entry[1]:
                    entry[1] = True
                    await self._send(
                        json.dumps({"type": "text", "text": entry[0], "id": message_id})
                    )
        elif kind == "message":
            self._show(frame)
        elif kind == "resume":
            self.token = frame["token"]
        elif kind == "error":
            self.failure = frame.get("code", "")
            self._note("error", self.failure)
        elif kind == "ended":
            self._ended = True
            self.ended_reason = frame.get("reason", "")
            self._note("ended", self.ended_reason)
        self._changed.set()

    def _show(self, message: dict[str, Any]) -> None:
        message_id = message["id"]
        if message["role"] == "user":
            self.outbox.pop(message_id, None)
        shown = self.view.get(message_id)
        if shown is None:
            self.view[message_id] = Shown(message["role"], message["text"], message["final"])
        else:
            shown.text, shown.final = message["text"], message["final"]
