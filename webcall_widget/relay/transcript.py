"""The conversation of one call as the relay keeps it: written, held, replayed, once each.

A :class:`Transcript` takes every message of the call, from either side:

* it writes the final ones to the database in the background (:class:`TranscriptWriter`),
  so the pump never waits on a write;
* it keeps the agent's partial messages (same id, ``final: false``) until their final
  version comes, and writes what is still partial when the call ends;
* while the visitor is away (their socket dropped, the call waits for a resume), it holds
  what is said, :data:`MAX_HELD_MESSAGES` at most, for the replay when they come back;
* it assembles the replay: the stored transcript, what is not written yet, what came
  while the visitor was away, and the partials, one entry per message id.

A message the visitor typed is shown once and reaches the agent once, whatever the
network does: :class:`TypedMessages` holds that rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Iterable
from typing import Any

from webcall_widget.relay.records import CallInfo, NewMessage, Recorder
from webcall_widget.voicehub.events import Message, Role

logger = logging.getLogger("webcall_widget.relay")

# Typed messages remembered so that an upstream echo of them is not shown twice.
MAX_UNCONFIRMED = 32
# Ids of messages the visitor typed, remembered so that one sent again after a reconnect
# reaches the agent once.
MAX_SEEN_IDS = 256
# Messages kept while the visitor is away, for the replay when they come back (the
# transcript in the database has them too; these cover what is not written yet).
MAX_HELD_MESSAGES = 200
# The replay of a resumed call sends at most this many messages, the latest.
MAX_REPLAY_MESSAGES = 1000


class TypedMessages:
    """What the visitor typed, so that each message is shown once and reaches the agent once.

    A typed message could be seen twice in two ways, and each has one rule here:

    * **Sent again.** The widget keeps each message it sent until the relay confirms it
      (a ``message`` frame with the same ``id``), and sends the unconfirmed ones again
      after a reconnect: the confirmation may be what the dropped socket lost. A message
      whose id already went upstream is confirmed again, not sent again
      (:meth:`already_sent`).
    * **Echoed.** VoiceHub may repeat what the visitor typed as a user message of its own
      (with its own id), after the relay has already shown it. The next final user message
      whose text is the oldest unconfirmed typed text is taken for that echo and not shown
      (:meth:`is_echo`).
    """

    def __init__(self) -> None:
        # Made with the first typed message: a voice call never needs them.
        self._unconfirmed: deque[str] | None = None
        self._seen_ids: deque[str] | None = None
        self.count = 0

    def already_sent(self, message_id: str | None) -> bool:
        return message_id is not None and message_id in (self._seen_ids or ())

    def sent(self, text: str, message_id: str | None) -> str:
        """A message went upstream; its id (the widget's, or one made up)."""
        self.count += 1
        if self._unconfirmed is None:
            self._unconfirmed = deque(maxlen=MAX_UNCONFIRMED)
        self._unconfirmed.append(text)
        if message_id is None:
            return f"visitor-{self.count}"
        if self._seen_ids is None:
            self._seen_ids = deque(maxlen=MAX_SEEN_IDS)
        self._seen_ids.append(message_id)
        return message_id

    def is_echo(self, text: str) -> bool:
        if self._unconfirmed and self._unconfirmed[0] == text.strip():
            self._unconfirmed.popleft()
            return True
        return False


class Transcript:
    def __init__(self, call: CallInfo, recorder: Recorder) -> None:
        self.label = str(call.call_id)
        self.writer = TranscriptWriter(call, recorder)
        self.typed = TypedMessages()
        self._partials: dict[str, Message] = {}
        self._held: deque[NewMessage] | None = None  # made when the visitor first goes away
        self.held_total = 0  # messages held since the call began
        self._held_dropped = 0
        self._stored: set[tuple[str, str]] = set()
        self._answer_due = False  # the visitor spoke last: the agent's answer is to come
        self._agent_done: asyncio.Event | None = None  # made for the first wait on it

    @property
    def agent_busy(self) -> bool:
        """Whether the agent is in the middle of a message, or has yet to answer the
        visitor's last one."""
        return self._answer_due or any(m.role is Role.AGENT for m in self._partials.values())

    async def agent_done(self) -> None:
        """Return once the agent is not busy (:attr:`agent_busy`), or the call ends."""
        if not self.agent_busy:
            return
        if self._agent_done is None:
            self._agent_done = asyncio.Event()
        await self._agent_done.wait()

    def _agent_may_be_done(self) -> None:
        if self._agent_done is not None and not self.agent_busy:
            self._agent_done.set()

    def seen(self, stored: list[NewMessage]) -> None:
        """What another process wrote before this one took the call over: VoiceHub may
        send its latest messages again to the new socket, and a final message with the
        same id and text is then neither written nor shown twice."""
        self._stored = {(m.upstream_id, m.text) for m in stored if m.final and m.upstream_id}

    def heard(self, message: Message) -> NewMessage | None:
        """A message from upstream: what to show the visitor; None for an echo of theirs,
        or a message written before (:meth:`seen`)."""
        if message.final:
            self._answer_due = message.role is Role.USER
            self._partials.pop(message.id, None)
            self._agent_may_be_done()
        if message.role is Role.USER and message.final and self.typed.is_echo(message.text):
            return None
        if message.final and (message.id, message.text) in self._stored:
            return None
        shown = NewMessage(message.role.value, message.text, message.id, message.final)
        if message.final:
            self.writer.add(shown)
        else:
            self._partials[message.id] = message
        return shown

    def typed_message(self, text: str, message_id: str) -> NewMessage:
        """A message the visitor typed, sent upstream; written, and to be shown."""
        message = NewMessage(Role.USER.value, text, message_id, True)
        self.writer.add(message)
        self._answer_due = True
        return message

    # while the visitor is away

    def hold(self, message: NewMessage) -> None:
        if self._held is None:
            self._held = deque(maxlen=MAX_HELD_MESSAGES)
        if len(self._held) == self._held.maxlen:
            self._held_dropped += 1
        self._held.append(message)
        self.held_total += 1

    def held_since(self, total: int) -> list[NewMessage]:
        """What was held after the first ``total`` messages (those the visitor got)."""
        if total >= self.held_total or self._held is None:
            return []
        return list(self._held)[-(self.held_total - total) :]

    def release_held(self) -> None:
        """The visitor has everything that was held."""
        self._held = None
        if self._held_dropped:
            logger.warning(
                "Call %s: %d message(s) came while the visitor was away and were not "
                "kept for the replay (the transcript has them).",
                self.label,
                self._held_dropped,
            )
            self._held_dropped = 0

    def held_count(self) -> int:
        return len(self._held or ())

    def replay(self, stored: list[NewMessage]) -> list[dict[str, Any]]:
        """The conversation so far: the stored transcript, what is not written yet, what
        came while the visitor was away, and the messages still being written, one entry
        per message id (its latest version, at its first place)."""
        partials = (NewMessage(m.role.value, m.text, m.id, False) for m in self._partials.values())
        merged: dict[str, NewMessage] = {}
        sources: Iterable[NewMessage] = itertools.chain(
            stored, self.writer.unwritten(), self._held or (), partials
        )
        for index, message in enumerate(sources):
            merged[message.upstream_id or f"#{index}"] = message
        return entries(merged.values())

    async def close(self) -> None:
        """What is still partial is written as it stands, then everything queued."""
        for partial in self._partials.values():
            self.writer.add(NewMessage(partial.role.value, partial.text, partial.id, False))
        self._partials.clear()
        self._answer_due = False  # no answer will come
        self._agent_may_be_done()
        await self.writer.close()


def entries(messages: Iterable[NewMessage]) -> list[dict[str, Any]]:
    """Messages as a ``transcript`` frame lists them (the latest, at most
    :data:`MAX_REPLAY_MESSAGES`)."""
    return [
        {"id": m.upstream_id, "role": m.role, "text": m.text, "final": m.final}
        for m in list(messages)[-MAX_REPLAY_MESSAGES:]
    ]


class TranscriptLost(Exception):
    """Transcript messages could not be written, even after retries."""


class TranscriptWriter:
    """Writes transcript messages in the background, so the pump never waits on the DB.

    A failed write keeps its batch, in order, and is tried again with a growing pause; it
    never stops the call. Whatever is still unwritten when the call ends gets one more
    try; what the database did not take then is written once it answers (:mod:`.late`).
    """

    RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)

    def __init__(self, call: CallInfo, recorder: Recorder) -> None:
        self.call = call
        self.recorder = recorder
        self._queue: list[NewMessage] = []
        self._wake: asyncio.Event | None = None
        self._started = False
        self._closing = False
        self._failures = 0
        self._task: asyncio.Task[None] | None = None
        self._inflight: list[NewMessage] = []

    def start(self) -> None:
        """Write from now on: its task starts with the first message (a call nobody speaks
        in costs none)."""
        self._started = True
        if self._queue:
            self._wake_up()

    def add(self, message: NewMessage) -> None:
        self._queue.append(message)
        if self._started:
            self._wake_up()

    def _wake_up(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(
                self._run(self._wake), name=f"webcall-transcript-{self.call.call_id}"
            )
        self._wake.set()

    def unwritten(self) -> list[NewMessage]:
        """Messages not in the database yet (some may be landing right now), in order."""
        return [*self._inflight, *self._queue]

    async def _run(self, wake: asyncio.Event) -> None:
        while True:
            await wake.wait()
            wake.clear()
            if self._closing:
                return
            if not await self._flush():
                pause = self.RETRY_SECONDS[min(self._failures, len(self.RETRY_SECONDS)) - 1]
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        while not self._closing:
                            await wake.wait()
                            wake.clear()
                wake.set()

    async def _flush(self) -> bool:
        """Write the queue; False (and the queue kept) when the write failed."""
        batch, self._queue = self._queue, []
        if not batch:
            return True
        self._inflight = batch
        try:
            await self.recorder.add_messages(self.call.call_id, batch)
        except Exception as exc:
            self._queue[:0] = batch
            self._failures += 1
            if self._failures == 1:
                logger.warning(
                    "Call %s: writing %d transcript message(s) failed (%s: %s); "
                    "they are kept and tried again.",
                    self.call.call_id,
                    len(batch),
                    type(exc).__name__,
                    exc,
                )
            return False
        finally:
            self._inflight = []
        if self._failures:
            logger.info("Call %s: the transcript is written again.", self.call.call_id)
        self._failures = 0
        return True

    async def close(self) -> None:
        """Write whatever is still queued, then stop.

        The task is asked to stop rather than cancelled: a batch already on its way to
        the database must land before the last one is numbered.
        """
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            task, self._task = self._task, None
            # Not ``await task``: when the event loop shuts down it cancels this task too,
            # and its CancelledError must not stop the call's end halfway.
            await asyncio.wait((task,))
            if not task.cancelled() and task.exception() is not None:
                logger.error(
                    "Call %s: the transcript writer failed.",
                    self.call.call_id,
                    exc_info=task.exception(),
                )
        if await self._flush():
            return
        await asyncio.sleep(0.5)
        await self.write_rest()

    async def write_rest(self) -> None:
        """Write what is still queued (after :meth:`close`, once more).

        Raises:
            TranscriptLost: the write failed; what is queued stays queued.
        """
        if not await self._flush():
            raise TranscriptLost(f"{len(self._queue)} transcript message(s) were not written")
