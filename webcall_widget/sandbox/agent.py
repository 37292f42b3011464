"""The sandbox's echo agent: one :class:`Conversation` per connected socket.

It does not know how frames are carried; the Socket.IO and plain WebSocket servers
:meth:`~Conversation.feed` it decoded events and give it ``emit`` and ``disconnect``.
It enforces VoiceHub's documented join rules and then:

* text: greets on join, answers every message by streaming it back word by word
  (partial ``created`` events, then a final one), and hangs up with ``call.ended`` when
  the visitor says goodbye;
* audio: chimes on join, finds the end of each utterance with an energy VAD, announces
  the visitor's turn on the text channel (a user ``created`` message) and plays the
  utterance back paced in real time. Speech during playback stops it at once and sends
  ``audio.clear`` (barge-in).

Events are handled in arrival order by one worker task; what the agent says is queued
for a second task, so a long reply never delays reading what the visitor sends next,
which is what makes barge-in possible.

Everything it says and reads is in the shapes of its profile (``SandboxConfig.profile``):
event names, audio payloads each way, message fields and roles, ids or none, streamed
text replaced or appended, a join confirmed by an event or an acknowledgement, and a
hang-up announced by ``call.ended`` or only by disconnecting.

A call outlives its socket when the socket is lost mid-call (dropped without leaving its
channels or saying goodbye, as when the relay's process dies): it waits
``SandboxConfig.rejoin_grace`` seconds for a new socket to join it, and that socket takes
the conversation over where it was (no second greeting; message ids go on). With the
profile's ``REJOIN`` "never", a second socket for a call under way is refused instead
(:meth:`Conversation._refuse_rejoin` describes how) and the call ends.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from webcall_widget.sandbox import audio
from webcall_widget.sandbox.config import SandboxConfig
from webcall_widget.sandbox.state import SandboxCall, SandboxState, Wire
from webcall_widget.sandbox.vad import EnergyVad, SpeechEnded, SpeechStarted
from webcall_widget.voicehub.codecs import BadAudio, decode_audio, encode_audio, put
from webcall_widget.voicehub.events import CHANNELS_FOR_MODE, Channel, Mode, Role
from webcall_widget.voicehub.profile import (
    CallEnd,
    JoinConfirmation,
    MessageUpdates,
    Rejoin,
    UpstreamProfile,
)

if TYPE_CHECKING:
    from webcall_widget.sandbox.webhooks import WebhookSender

Emit = Callable[[str, Any], Awaitable[None]]
Disconnect = Callable[[], Coroutine[Any, Any, None]]
Turn = Callable[[], Awaitable[None]]

_GOODBYE = re.compile(r"^\s*(good\s*)?bye\b", re.IGNORECASE)
# Agent audio is sent this far ahead of real time, for the browser's jitter buffer.
_PLAYBACK_LEAD = 0.06
# The end reasons of a call whose socket was lost and never joined again, and of one
# ended because a second socket asked to join it (REJOIN "never").
LOST = "client-lost"
REJOIN_REFUSED = "rejoin-refused"
# A refused socket is closed this long after the refusal, so that the refusal (and a
# Socket.IO acknowledgement carrying it) reaches the client first.
_REFUSAL_LINGER = 0.1


class Conversation:
    def __init__(
        self,
        *,
        config: SandboxConfig,
        state: SandboxState,
        profile: UpstreamProfile,
        emit: Emit,
        disconnect: Disconnect,
        wire: Wire,
        webhooks: WebhookSender | None = None,
    ) -> None:
        self.config = config
        self.webhooks = webhooks
        self.state = state
        self.profile = profile
        self.names = profile.events
        self._emit = emit
        self._disconnect = disconnect
        self.wire = wire
        self.call: SandboxCall | None = None
        self._hangup: asyncio.Task[None] | None = None
        self._vad: EnergyVad | None = None
        self._loopback = False
        self._talking = False
        self._interrupted = asyncio.Event()
        self._audio_refused = False
        self._inbox: asyncio.Queue[tuple[str, Any, asyncio.Future[Any]]] = asyncio.Queue()
        self._turns: asyncio.Queue[Turn] = asyncio.Queue()
        self._audio_turns: set[Turn] = set()
        self._tasks = [
            asyncio.create_task(self._work(), name="sandbox-conversation"),
            asyncio.create_task(self._speak(), name="sandbox-speaker"),
        ]

    def feed(self, name: str, data: Any) -> asyncio.Future[Any]:
        """Queue one received event; never blocks. The future gets what to acknowledge
        it with (None: no acknowledgement), once it is handled."""
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait((name, data, answer))
        return answer

    async def _work(self) -> None:
        while True:
            name, data, answer = await self._inbox.get()
            try:
                result = await self.handle(name, data)
            except BaseException:
                answer.cancel()
                raise
            if not answer.done():
                answer.set_result(result)

    async def _speak(self) -> None:
        while True:
            turn = await self._turns.get()
            self._audio_turns.discard(turn)
            if self.call is not None:  # None: another socket took the call over
                await turn()

    async def emit(self, name: str, data: Any, *, call: SandboxCall | None = None) -> None:
        """Send one event, recorded as ``call``'s (by default, the joined one's)."""
        call = call or self.call
        self.state.record(call.call_id if call else None, "out", name, data)
        await self._emit(name, data)

    async def error(self, message: str) -> None:
        await self.emit(self.names.error, {"message": message})

    async def handle(self, name: str, data: Any) -> Any:
        """Act on one event; what to acknowledge it with, or None."""
        audio_in = self.profile.audio_in
        if name == audio_in.event:
            try:
                pcm = decode_audio(audio_in, data)
            except BadAudio as exc:
                await self._refuse_audio(f"{name} payload: {exc}")
                return None
            await self._audio(pcm)
            return None
        call_id = data.get("callId") if isinstance(data, dict) else None
        self.state.record(call_id or (self.call.call_id if self.call else None), "in", name, data)
        if name == self.names.join:
            return await self._join(data)
        if name == self.names.leave:
            await self._leave(data)
        elif name == self.names.text_message:
            await self._text(data)
        else:
            await self.error(f"unknown event {name!r}")
        return None

    async def closed(self, *, lost: bool = False) -> None:
        """The socket is gone: stop both tasks. The call ends with it, unless the socket
        was ``lost`` (dropped without a goodbye) while it still had channels joined: then
        the call waits ``rejoin_grace`` seconds for another socket."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        while not self._inbox.empty():
            self._inbox.get_nowait()[2].cancel()
        call = self.call
        if call is not None and call.holder is self:
            call.holder = None
            if call.ended is None and lost and call.joined:
                self._keep(call)
            elif call.ended is None:
                call.ended = "client-disconnected"
        if call is not None and call.ended is not None and self.webhooks is not None:
            self.webhooks.finished(call)
        self.state.count_connection(opened=False)

    def _keep(self, call: SandboxCall) -> None:
        loop = asyncio.get_running_loop()
        call.lost_at = lost_at = loop.time()
        self.state.changed()
        loop.call_later(self.config.rejoin_grace, self._give_up, call, lost_at)

    def _give_up(self, call: SandboxCall, lost_at: float) -> None:
        """Nobody joined the call again in time: it ends."""
        if call.lost_at != lost_at or call.ended is not None:
            return
        if self.state.calls.get(call.call_id) is not call:
            return  # the sandbox was reset meanwhile
        call.lost_at = None
        call.ended = LOST
        self.state.changed()
        if self.webhooks is not None:
            self.webhooks.finished(call)

    def detach(self) -> None:
        """Another socket took the call over: this one speaks for it no more. What it was
        about to say is dropped; what it is sent next is answered as on a socket that
        joined nothing."""
        self.call = None
        self._vad = None
        self._interrupted.set()
        while not self._turns.empty():
            self._turns.get_nowait()
        self._audio_turns.clear()

    # joining and leaving

    async def _join(self, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("channels"), list):
            return await self._refuse_join("channel.join needs callId and channels")
        call = self.state.calls.get(str(data.get("callId")))
        if call is None or call.ended is not None:
            return await self._refuse_join("unknown or ended call")
        channels = tuple(dict.fromkeys(str(c) for c in data["channels"]))
        valid = {c.value for c in Channel}
        if not channels or any(c not in valid for c in channels):
            return await self._refuse_join("channels must be 'audio' and/or 'text'")
        if call.mode is Mode.TEXT and Channel.AUDIO in channels:
            return await self._refuse_join("a text call may not join the audio channel")
        if call.mode.has_audio and Channel.AUDIO not in channels:
            return await self._refuse_join(f"a {call.mode.value} call must join the audio channel")
        if self.state.faults.join_silent:
            return None
        # Joining again on the same socket (the relay takes the audio channel up again
        # after its visitor came back) adds to what is joined, and greets nobody twice.
        rejoining = self.call is call
        under_way = not rejoining and (call.holder is not None or call.lost_at is not None)
        if under_way:
            if self.profile.rejoin is Rejoin.NEVER:
                return await self._refuse_rejoin(call)
            self._take_over(call)
        already = call.joined if rejoining else ()
        fresh = not rejoining and not under_way
        self.call = call
        call.holder = self
        call.joined = tuple(dict.fromkeys((*already, *channels)))
        self.state.changed()
        if self.webhooks is not None:
            self.webhooks.joined(call)
        confirmation = {"callId": call.call_id, "channels": list(channels)}
        if self.profile.join_confirmation is JoinConfirmation.EVENT:
            await self.emit(self.names.joined, confirmation)
        if Channel.AUDIO in channels:
            agent = self.config.agents.get(call.agent_id)
            self._loopback = bool(agent and agent.loopback)
            self._vad = EnergyVad(self.config.audio.input_rate, self.config.vad)
            self._audio_refused = False
            if self.config.voice_greeting and not self._loopback and fresh:
                chime = audio.tone((660.0, 880.0), 0.4, self.config.audio.output_rate)
                self._queue_audio(lambda: self._play(chime))
        if Channel.TEXT in channels and Channel.TEXT not in already and not under_way:
            self._turns.put_nowait(lambda: self._say(self.config.greeting, stream=False))
        if self.profile.join_confirmation is JoinConfirmation.ACK:
            return confirmation
        return None

    def _take_over(self, call: SandboxCall) -> None:
        """This socket goes on with a call another socket held (or lost)."""
        previous = call.holder
        if previous is not None and previous is not self:
            previous.detach()
        call.holder = None
        call.lost_at = None
        call.rejoins += 1

    async def _refuse_rejoin(self, call: SandboxCall) -> Any:
        """REJOIN "never": a second socket asked to join a call under way. The refusal,
        as a VoiceHub that ties a call to its first connection would put it:

        1. the join is answered with the error event ``{"message": "call <id> is under
           way on another connection and cannot be joined again", "code":
           "rejoin-refused"}`` (with JOIN_CONFIRMATION "ack": the acknowledgement
           ``{"error": <message>, "code": "rejoin-refused"}``);
        2. the call ends: ``call.ended`` ``{"callId", "reason": "rejoin-refused"}``
           (unless calls end by disconnecting), then this socket is closed; a first
           socket still open is hung up the same way.
        """
        message = (
            f"call {call.call_id} is under way on another connection and cannot be joined again"
        )
        previous = call.holder
        call.holder = None
        call.lost_at = None
        call.ended = REJOIN_REFUSED
        self.state.changed()
        if self.webhooks is not None:
            self.webhooks.finished(call)
        if previous is not None and previous is not self:
            await previous.hang_up(REJOIN_REFUSED)
        self._hangup = asyncio.create_task(self._end_refused(call), name="sandbox-refuse")
        if self.profile.join_confirmation is JoinConfirmation.ACK:
            return {"error": message, "code": REJOIN_REFUSED}
        await self.emit(self.names.error, {"message": message, "code": REJOIN_REFUSED}, call=call)
        return None

    async def _end_refused(self, call: SandboxCall) -> None:
        await asyncio.sleep(_REFUSAL_LINGER)
        if self.profile.call_end is not CallEnd.DISCONNECT:
            ended = {"callId": call.call_id, "reason": REJOIN_REFUSED}
            await self.emit(self.names.call_ended, ended, call=call)
        await self._disconnect()

    async def _refuse_join(self, message: str) -> Any:
        if self.profile.join_confirmation is JoinConfirmation.ACK:
            return {"error": message}
        await self.error(message)
        return None

    async def _leave(self, data: Any) -> None:
        if self.call is None or not isinstance(data, dict):
            return
        leaving = set(data.get("channels") or CHANNELS_FOR_MODE[self.call.mode])
        self.call.joined = tuple(c for c in self.call.joined if c not in leaving)
        self.state.changed()

    # text

    async def _text(self, data: Any) -> None:
        call = self.call
        if call is None or Channel.TEXT not in call.joined:
            await self.error("join the text channel before sending text")
            return
        if not call.mode.has_text:
            await self.error(f"a {call.mode.value} call does not take text messages")
            return
        text = data.get("text") if isinstance(data, dict) else None
        if not isinstance(text, str) or not text.strip():
            await self.error("text.message needs a non-empty text")
            return
        faults = self.state.faults
        if faults.drop_on_text is not None and text == faults.drop_on_text:
            self._hangup = asyncio.create_task(self._disconnect(), name="sandbox-drop")
            return
        if faults.corrupt_after_text is not None and text == faults.corrupt_after_text:
            self.wire.corrupt_next_frame = True
        if faults.flood_on_text is not None and text == faults.flood_on_text:
            await self._flood(call)
        call.said.append(text.strip())
        if faults.echo_user_text:
            await self._created(f"user-{call.turns}", text.strip(), role=Role.USER)
        if _GOODBYE.match(text) and self.config.hangs_up_on_goodbye:
            self._turns.put_nowait(self._goodbye)
        elif _GOODBYE.match(text):
            self._turns.put_nowait(lambda: self._say("Goodbye!", stream=False))
        else:
            reply = f"You said: {text.strip()}"
            self._turns.put_nowait(lambda: self._say(reply, stream=True))

    async def _goodbye(self) -> None:
        await self._say("Goodbye!", stream=False)
        await self.hang_up(self.state.faults.hangup_reason)

    async def _say(self, text: str, *, stream: bool) -> None:
        message_id = self._next_id()
        words = text.split(" ")
        if not stream or len(words) == 1:
            await self._created(message_id, text, final=True)
            return
        appending = self.profile.message_updates is MessageUpdates.APPEND
        for end in range(1, len(words)):
            if appending:  # each piece: the next word, with the space before it
                piece = words[0] if end == 1 else " " + words[end - 1]
            else:
                piece = " ".join(words[:end])
            await self._created(message_id, piece, final=False)
            await asyncio.sleep(self.config.word_delay)
        await self._created(message_id, " " + words[-1] if appending else text, final=True)

    def _next_id(self) -> str:
        assert self.call is not None
        self.call.turns += 1
        return f"{self.call.call_id[:8]}-{self.call.turns}"

    async def _created(
        self, message_id: str, text: str, *, final: bool = True, role: Role = Role.AGENT
    ) -> None:
        assert self.call is not None
        fields = self.profile.message_fields
        payload: dict[str, Any] = {"callId": self.call.call_id}
        if fields.id is not None:
            put(payload, fields.id, message_id)
        visitor = self.profile.visitor_roles[0]
        put(payload, fields.role, visitor if role is Role.USER else Role.AGENT.value)
        put(payload, fields.text, text)
        if fields.final is not None:
            put(payload, fields.final, final)
        await self.emit(self.names.created, payload)

    # audio

    async def _refuse_audio(self, message: str) -> None:
        """Say once per socket what is wrong with the audio it sends."""
        if not self._audio_refused:
            self._audio_refused = True
            await self.error(message)

    async def _audio(self, pcm: bytes) -> None:
        call = self.call
        if call is None or Channel.AUDIO not in call.joined or self._vad is None:
            await self._refuse_audio("join the audio channel before sending audio")
            return
        self.state.count_audio(call.call_id, "in", len(pcm))
        if self._loopback:
            await self._send_audio(pcm)
            return
        for event in self._vad.feed(pcm, agent_talking=self._talking):
            if isinstance(event, SpeechStarted) and self._talking:
                await self._barge_in()
            elif isinstance(event, SpeechEnded):
                await self._created(
                    self._next_id(), f"[{event.seconds:.1f} s of speech]", role=Role.USER
                )
                self._queue_audio(lambda e=event: self._echo(e.pcm, e.seconds))  # type: ignore[misc]

    def _queue_audio(self, turn: Turn) -> None:
        """A turn that plays audio: one the visitor's speech cancels."""
        self._audio_turns.add(turn)
        self._turns.put_nowait(turn)

    async def _barge_in(self) -> None:
        """The visitor talks over the agent: stop at once and tell the client to do so too.
        What the agent was going to play goes; its replies to typed messages (text only)
        stay, as speaking does not take back what the visitor wrote."""
        self._interrupted.set()
        kept = []
        while not self._turns.empty():
            turn = self._turns.get_nowait()
            if turn not in self._audio_turns:
                kept.append(turn)
        self._audio_turns.clear()
        for turn in kept:
            self._turns.put_nowait(turn)
        assert self.call is not None
        self.call.interruptions += 1
        await self.emit(self.names.audio_clear, {"callId": self.call.call_id})

    async def _echo(self, pcm: bytes, seconds: float) -> None:
        await self._say(f"Echoing {seconds:.1f} seconds of audio.", stream=False)
        rates = self.config.audio
        await self._play(audio.resample(pcm, rates.input_rate, rates.output_rate))

    async def _play(self, pcm: bytes) -> None:
        """Send agent audio in frames, paced in real time, until done or interrupted."""
        loop = asyncio.get_running_loop()
        frame_bytes = self.config.audio.output_frame_bytes
        frame_seconds = self.config.audio.frame_ms / 1000
        self._interrupted.clear()
        self._talking = True
        started = loop.time()
        try:
            for index, frame in enumerate(audio.frames(pcm, frame_bytes)):
                if self._interrupted.is_set():
                    return
                await self._send_audio(frame)
                delay = started + (index + 1) * frame_seconds - _PLAYBACK_LEAD - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
        finally:
            self._talking = False

    async def _send_audio(self, frame: bytes) -> None:
        assert self.call is not None
        self.state.count_audio(self.call.call_id, "out", len(frame))
        direction = self.profile.audio_out
        await self._emit(direction.event, encode_audio(direction, self.call.call_id, frame))

    async def _flood(self, call: SandboxCall) -> None:
        """A misbehaving upstream (``Faults.flood_on_text``): errors in a burst, events
        nobody documented (one carrying the call's API key), and an unreadable message."""
        for index in range(60):
            await self.emit(self.names.exception, {"message": f"internal error {index}"})
        for index in range(20):
            await self.emit(
                "debug.trace",
                {"seq": index, "apiKey": call.api_key, "note": f"key {call.api_key} used"},
            )
        await self.emit(self.names.created, {"callId": call.call_id, "unexpected": True})

    # the end

    async def hang_up(self, reason: str) -> None:
        """Announce the end of the call, then drop the socket.

        The drop runs in its own task: it ends in :meth:`closed`, which cancels the task
        that is calling this.
        """
        if self.call is not None:
            self.call.ended = reason
            if self.profile.call_end is not CallEnd.DISCONNECT:
                await self.emit(
                    self.names.call_ended, {"callId": self.call.call_id, "reason": reason}
                )
        self._hangup = asyncio.create_task(self._disconnect(), name="sandbox-hangup")
