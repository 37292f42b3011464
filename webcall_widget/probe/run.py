"""Learn what a real VoiceHub socket says: the engine of ``manage.py webcall_probe``.

:func:`run_probe` creates a real call (it costs one), opens its socket as the profile
says (trying a namespace, CONNECT auth with the call's id, or a plain WebSocket when
that fails, unless told not to guess), joins, then, each step ending when the agent has
been quiet a moment:

1. waits for the greeting;
2. sends a text (text modes); when VoiceHub answers that it does not know the event,
   sends it again under the names its other events suggest
   (:func:`~webcall_widget.probe.guesses.text_event_names`), until one is answered;
3. sends a few seconds of speech-like audio (voice modes), and, while the agent does not
   react, again under the names and in the shapes the agent's own audio suggests
   (:func:`~webcall_widget.probe.guesses.audio_in_tries`);
4. drops its socket without leaving, as a relay process that died would, opens another,
   joins the call again and checks that the agent still answers (``UPSTREAM.REJOIN``);
5. says goodbye (text modes), to see how a call ends;

recording everything that crosses the socket with its time, for at most ``seconds``.
Then it leaves, closes, and :mod:`~webcall_widget.probe.findings` turns the recording
into findings and settings. Nothing it writes holds the API key: payloads are summarised
(long strings cut, binary as a length, secret-looking fields hidden) and the key, should
VoiceHub echo it, is cut out.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from webcall_widget.probe.findings import (
    ANSWERED,
    REFUSED,
    SILENT,
    UNKNOWN,
    Analysis,
    Observation,
    Recorded,
    RejoinTry,
    SpeechTry,
    TextTry,
    agent_audio,
    analyse,
    answer_to,
)
from webcall_widget.probe.guesses import audio_in_tries, text_event_names
from webcall_widget.probe.speech import frames, silence, speech_like
from webcall_widget.voicehub import errors
from webcall_widget.voicehub.address import ConnectContext
from webcall_widget.voicehub.client import CreatedCall, create_web_call
from webcall_widget.voicehub.codecs import summarise
from webcall_widget.voicehub.events import CHANNELS_FOR_MODE, Mode, Transport
from webcall_widget.voicehub.opening import open_session
from webcall_widget.voicehub.profile import (
    AudioDirection,
    SocketPathAs,
    UpstreamProfile,
)
from webcall_widget.voicehub.profile_settings import build_profile
from webcall_widget.voicehub.protocol import load_protocol
from webcall_widget.voicehub.secret import Secret
from webcall_widget.voicehub.session import UpstreamSession

SPEECH_SECONDS = 2.0
SPEECH_TAIL = 0.8  # of silence, so that the agent's voice detector hears the end
REACTION_SECONDS = 3.0  # after our speech, for the agent to show it heard it
GREETING_SECONDS = 4.0  # longest wait for the greeting to end
REPLY_SECONDS = 6.0  # longest wait for a reply to end
BYE_SECONDS = 4.0  # longest wait for the agent to end the call after goodbye
GUESS_CONNECT_SECONDS = 4.0  # for each way of opening the socket tried
DROPPED = "the probe dropped its socket mid-call, without leaving, as a relay that died would"


class ProbeFailed(Exception):
    """A step failed: ``stage`` ("create", "socket", "join"), what happened, what to try."""

    def __init__(self, stage: str, message: str, next_steps: list[str]) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message
        self.next_steps = next_steps

    def describe(self) -> str:
        steps = "".join(f"\n  - {step}" for step in self.next_steps)
        return f"{self.stage}: {self.message}" + (f"\nWhat to try next:{steps}" if steps else "")


@dataclass(frozen=True)
class ProbeOptions:
    base_url: str
    agent_id: str  # VoiceHub's id of the agent
    api_key: Secret
    mode: Mode
    upstream: Mapping[str, Any]  # UPSTREAM settings to start from, flags applied (valid)
    seconds: float = 30.0
    text: str = "Hello! This is a connection test."
    bye: str = "Goodbye"
    rejoin_text: str = "Are you still there?"
    # try other ways to open the socket, and other event names and audio shapes, when
    # the configured ones fail
    guess: bool = True
    rejoin: bool = True  # drop the socket mid-call and join again from another
    fixed: frozenset[str] = frozenset()  # UPSTREAM keys set by flags: never guessed
    request_timeout: float = 10.0
    connect_timeout: float = 10.0
    join_timeout: float = 10.0
    quiet: float = 1.0  # seconds without an event that end a step
    realtime: bool = True  # pace our audio in real time, as a microphone would


@dataclass
class ProbeResult:
    options: ProbeOptions
    started: datetime.datetime
    observation: Observation
    created: CreatedCall | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    analysis: Analysis | None = None
    failure: ProbeFailed | None = None
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """What ``--out`` gets: safe to share (no key; payloads summarised)."""
        secrets = [self.options.api_key.reveal()] if self.options.api_key else []
        analysis = self.analysis
        document = {
            "probe": {
                "started": self.started.isoformat(timespec="seconds"),
                "url": self.options.base_url,
                "agentId": self.options.agent_id,
                "mode": self.options.mode.value,
                "seconds": self.options.seconds,
                "settings": self.options.upstream,
            },
            "createWebCall": (
                {"callId": self.created.call_id, "webCallSocketPath": self.created.socket_path}
                if self.created
                else None
            ),
            "connection": self.attempts,
            "events": [
                {
                    "t": round(record.t, 3),
                    "dir": record.direction,
                    "event": record.event,
                    "data": summarise(record.data, secrets=secrets),
                }
                for record in self.observation.records
            ],
            "notes": self.notes,
            "findings": analysis.findings if analysis else [],
            "unlearnt": analysis.unlearnt if analysis else [],
            "suggested": {"UPSTREAM": analysis.suggested} if analysis else None,
            "failure": (
                {
                    "stage": self.failure.stage,
                    "message": self.failure.message,
                    "next": self.failure.next_steps,
                }
                if self.failure
                else None
            ),
        }
        # The key should not be anywhere by now; should VoiceHub have echoed it in a
        # place the summary keeps, it is cut out here.
        text = self.options.api_key.redact(json.dumps(document, default=str))
        loaded: dict[str, Any] = json.loads(text)
        return loaded


async def run_probe(options: ProbeOptions) -> ProbeResult:
    """Probe VoiceHub; never raises for what VoiceHub does (see ``result.failure``)."""
    profile = build_profile(options.upstream)
    result = ProbeResult(
        options=options,
        started=datetime.datetime.now(tz=datetime.UTC),
        observation=Observation(configured=copy.deepcopy(dict(options.upstream)), profile=profile),
    )
    try:
        await _Probe(options, result).run()
    except ProbeFailed as exc:
        result.failure = exc
    if result.observation.records:
        result.analysis = analyse(result.observation)
    return result


class _Probe:
    def __init__(self, options: ProbeOptions, result: ProbeResult) -> None:
        self.options = options
        self.result = result
        self.observation = result.observation
        self.loop = asyncio.get_running_loop()
        self.opened_at = 0.0
        self.deadline = 0.0
        self.created: CreatedCall | None = None
        self.session: UpstreamSession | None = None
        self.reader: asyncio.Task[None] | None = None
        self.closed = False
        self._changed = asyncio.Event()

    # recording

    def now(self) -> float:
        return self.loop.time() - self.opened_at

    def tap(self, direction: str, event: str, data: Any) -> None:
        if direction == "closed":
            self.closed = True
        self.observation.records.append(Recorded(self.now(), direction, event, data))
        self._changed.set()

    def last_heard(self) -> float:
        for record in reversed(self.observation.records):
            if record.direction in ("in", "ack", "closed"):
                return record.t
        return 0.0

    async def quiet(self, longest: float) -> None:
        """Until nothing has come for ``options.quiet`` seconds, at most ``longest``."""
        started = self.now()
        until = min(started + longest, self.deadline - self.opened_at)
        while not self.closed:
            now = self.now()
            wait = min(until, max(started, self.last_heard()) + self.options.quiet) - now
            if wait <= 0:
                return
            await self._next_change(wait)

    async def _next_change(self, longest: float) -> None:
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.01, longest)):
                await self._changed.wait()

    async def answer(self, since: float, event: str, longest: float) -> str:
        """How VoiceHub answered ``event`` sent at ``since``, waiting at most ``longest``
        seconds for something other than silence (see :func:`answer_to`)."""
        until = self.now() + longest
        while True:
            found = answer_to(self.observation.records, since, event, self.observation.profile)
            if found != SILENT or self.closed or self.now() >= until or self.time_left() <= 0:
                return found
            await self._next_change(until - self.now())

    def time_left(self) -> float:
        return self.deadline - self.loop.time()

    def going(self) -> bool:
        """Whether there is time, and a socket, for another step."""
        return self.time_left() > 0 and not self.closed and self.session is not None

    def learnt(self) -> UpstreamProfile:
        """The profile as the recording so far suggests it."""
        return build_profile(analyse(self.observation).suggested)

    def start_reading(self, session: UpstreamSession) -> None:
        self.reader = asyncio.create_task(self.read(session), name="webcall-probe-reader")

    async def stop_reading(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    # the steps

    async def run(self) -> None:
        options = self.options
        created = await self.create()
        session = await self.connect(created)
        self.start_reading(session)
        try:
            await self.join(session, created.call_id)
            await self.quiet(GREETING_SECONDS)
            if options.mode.has_text and self.going():
                self.observation.sent_text = options.text
                await self.talk(options.text)
            if options.mode.has_audio and self.going():
                await self.speak()
            await self.rejoin()
            if options.mode.has_text and options.bye and self.going():
                await self.send_text(options.bye)
                await self.quiet(BYE_SECONDS)
            await self.quiet(max(0.0, self.time_left()))
            if self.time_left() <= 0 and not self.closed:
                self.result.notes.append(f"stopped after {options.seconds:g}s (--seconds)")
            self.observation.completed = True
        finally:
            await self.finish()

    async def create(self) -> CreatedCall:
        options = self.options
        try:
            created = await asyncio.to_thread(
                create_web_call,
                options.base_url,
                api_key=options.api_key.reveal(),
                agent_id=options.agent_id,
                mode=options.mode,
                timeout=options.request_timeout,
            )
        except errors.VoiceHubError as exc:
            raise ProbeFailed("create", str(exc), _create_hints(exc, options)) from None
        self.result.created = self.created = created
        return created

    async def connect(self, created: CreatedCall) -> UpstreamSession:
        options = self.options
        context = ConnectContext(created.call_id, options.agent_id, options.api_key)
        tries = _ways_to_connect(options, self.observation.profile)
        timeout = options.connect_timeout
        if len(tries) > 1:
            timeout = min(timeout, GUESS_CONNECT_SECONDS)
        while tries:
            changes = tries.pop(0)
            upstream = _merged(options.upstream, changes)
            profile = build_profile(upstream)
            if profile.contradictions():
                continue
            self.opened_at = self.loop.time()
            try:
                session = await open_session(
                    base_url=options.base_url,
                    socket_path=created.socket_path,
                    connect_timeout=timeout,
                    profile=profile,
                    context=context,
                    tap=self.tap,
                    log=False,  # the probe reports what it saw itself
                )
            except errors.UpstreamConnectFailed as exc:
                outcome = "; then ".join(exc.tried) or str(exc)
                self.result.attempts.append({"changes": changes, "outcome": outcome})
                if "did not open" in outcome:  # no Engine.IO: a plain WebSocket, most likely
                    tries.sort(key=lambda t: t.get("TRANSPORT") != Transport.WEBSOCKET.value)
                continue
            self.result.attempts.append({"changes": changes, "outcome": "opened"})
            self.observation.profile = profile
            self.observation.connected_with = changes
            self.opened_at = self.loop.time()
            self.deadline = self.opened_at + options.seconds
            session.ask_join_ack = True  # to learn whether VoiceHub acknowledges the join
            self.session = session
            return session
        raise ProbeFailed(
            "socket",
            f"could not open the call's socket (webCallSocketPath {created.socket_path!r}) "
            f"in {len(self.result.attempts)} way(s): "
            + " | ".join(
                f"{a['changes'] or 'as configured'}: {a['outcome']}" for a in self.result.attempts
            ),
            _socket_hints(options),
        )

    async def join(self, session: UpstreamSession, call_id: str) -> None:
        options = self.options
        profile = self.observation.profile
        channels = tuple(c.value for c in CHANNELS_FOR_MODE[options.mode])
        await session.join(call_id, channels)
        sent = self.now()
        until = sent + options.join_timeout
        while self.now() < until and not self.closed:
            answers = [r for r in self.observation.records if r.t >= sent]
            if any(r.direction == "ack" for r in answers):
                return
            for record in answers:
                if record.direction != "in":
                    continue
                if record.event in (profile.events.error, profile.events.exception):
                    raise ProbeFailed(
                        "join",
                        f"VoiceHub answered {profile.events.join!r} with {record.event!r}: "
                        f"{summarise(record.data, secrets=[options.api_key.reveal()])}",
                        _join_hints(options),
                    )
                return  # something came: the analysis tells whether it confirms
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.01, until - self.now())):
                    await self._changed.wait()
        if self.closed:
            raise ProbeFailed(
                "join",
                "the socket closed after the join: " + self._closing(),
                _join_hints(options),
            )
        raise ProbeFailed(
            "join",
            f"nothing came within {options.join_timeout:g}s of {profile.events.join!r}",
            _join_hints(options),
        )

    def _closing(self) -> str:
        closed = [r.event for r in self.observation.records if r.direction == "closed"]
        return closed[-1] if closed else "?"

    # the visitor's text

    async def send_text(self, text: str, name: str | None = None) -> float:
        """Send ``text`` as the profile learnt so far says, or as event ``name``; when."""
        assert self.session is not None and self.created is not None
        profile = self.learnt()
        if name is not None:
            profile = dataclasses.replace(
                profile, events=dataclasses.replace(profile.events, text_message=name)
            )
        self.session.protocol = load_protocol(profile)
        sent = self.now()
        await self.session.send_text(self.created.call_id, text)
        return sent

    async def talk(self, text: str) -> None:
        """Send ``text``; while VoiceHub answers that it does not know the event, send it
        again under the names VoiceHub's own events suggest."""
        name = self.learnt().events.text_message
        answer = await self.say_text(text, name)
        if answer != UNKNOWN or not self._may_guess_text():
            return
        heard = [r.event for r in self.observation.records if r.direction == "in"]
        tried = [attempt.name for attempt in self.observation.texts]
        for candidate in text_event_names(tried, heard):
            if not self.going() or await self.say_text(text, candidate) == ANSWERED:
                return

    def _may_guess_text(self) -> bool:
        events = self.options.upstream.get("EVENTS")
        fixed = "EVENTS" in self.options.fixed and isinstance(events, Mapping)
        return self.options.guess and not (fixed and "text_message" in (events or {}))

    async def say_text(self, text: str, name: str) -> str:
        sent = await self.send_text(text, name)
        answer = await self.answer(sent, name, REPLY_SECONDS)
        self.observation.texts.append(TextTry(name, sent, answer))
        if answer == ANSWERED:
            await self.quiet(REPLY_SECONDS)
        return answer

    # the visitor's audio

    async def speak(self) -> None:
        """Speak as configured; while the agent does not react, again under the names
        and in the shapes its own audio suggests."""
        direction: AudioDirection | None = self.learnt().audio_in
        while direction is not None and self.going():
            if await self.say(direction) == ANSWERED or not self.options.guess:
                return
            direction = next(iter(self._audio_tries()), None)

    def _audio_tries(self) -> list[AudioDirection]:
        profile = self.observation.profile
        configured = profile.audio_in
        seen = agent_audio(self.observation.records)
        agent = (
            AudioDirection(seen.event, seen.shape, seen.field or configured.field, configured.rate)
            if seen is not None
            else None
        )
        tries = audio_in_tries(
            [(attempt.direction, attempt.answer) for attempt in self.observation.speech],
            agent,
            transport=profile.transport,
            heard=[r.event for r in self.observation.records if r.direction == "in"],
        )
        fixed = self.options.fixed
        return [
            d
            for d in tries
            if ("AUDIO_IN_EVENT" not in fixed or d.event == configured.event)
            and ("AUDIO_IN_FORMAT" not in fixed or d.shape is configured.shape)
            and ("AUDIO_IN_FIELD" not in fixed or d.field == configured.field)
        ]

    async def say(self, direction: AudioDirection, *, record: bool = True) -> str:
        """Send speech-like audio as ``direction``; how VoiceHub answered. Sending stops
        as soon as an error names the event: VoiceHub will not read the rest either."""
        session = self.session
        assert session is not None
        session.protocol = load_protocol(dataclasses.replace(self.learnt(), audio_in=direction))
        rate = direction.rate
        chunks = frames(speech_like(SPEECH_SECONDS, rate) + silence(SPEECH_TAIL, rate), rate)
        started = self.now()
        self.tap(
            "out",
            direction.event,
            {"speech": f"{len(chunks)} frames of 20 ms, as {direction.describe()}"},
        )
        profile = self.observation.profile
        for number, chunk in enumerate(chunks):
            if self.closed:
                break
            if answer_to(self.observation.records, started, direction.event, profile) in (
                UNKNOWN,
                REFUSED,
            ):
                break
            # A burst outruns a VoiceHub that reads slowly, and the session drops audio
            # then: the probe is not real time, so it waits for the buffer to drain (a
            # transport has no event for that: it is polled).
            while not await session.send_audio(chunk) and self.time_left() > 0:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            if self.options.realtime:
                delay = started + (number + 1) * 0.02 - self.now()
                if delay > 0:
                    await asyncio.sleep(delay)
        ended = self.now()
        answer = await self.answer(started, direction.event, REACTION_SECONDS)
        if record:
            self.observation.speech.append(SpeechTry(started, ended, direction, answer))
        if answer == ANSWERED:
            await self.quiet(REPLY_SECONDS)
        return answer

    # joining again from another socket

    async def rejoin(self) -> None:
        """Drop the socket mid-call, open another, join the call again, and see whether
        the agent still answers: what a relay that takes over a call does."""
        observation = self.observation
        if not self.options.rejoin:
            observation.rejoin_skipped = "--no-rejoin"
            return
        if not self.going():
            observation.rejoin_skipped = (
                "the call ended before" if self.closed else "out of time (--seconds)"
            )
            return
        assert self.session is not None and self.created is not None
        old, self.session = self.session, None
        await self.stop_reading()
        await old.abort()
        dropped = self.now()
        self.tap("dropped", DROPPED, None)
        profile = self.learnt()
        call_id = self.created.call_id
        try:
            session = await open_session(
                base_url=self.options.base_url,
                socket_path=self.created.socket_path,
                connect_timeout=self.options.connect_timeout,
                profile=profile,
                context=ConnectContext(call_id, self.options.agent_id, self.options.api_key),
                tap=self.tap,
                log=False,
            )
        except errors.UpstreamConnectFailed as exc:
            observation.rejoin = RejoinTry(dropped, "no-socket", detail=str(exc))
            self.closed = True  # no socket any more: the call ends when VoiceHub sees so
            return
        self.session = session
        channels = tuple(c.value for c in CHANNELS_FOR_MODE[self.options.mode])
        try:
            await session.join_confirmed(
                call_id, channels, seconds=self.options.join_timeout, under_way=True
            )
        except errors.UpstreamRejoinRefused as exc:
            observation.rejoin = RejoinTry(dropped, "refused", detail=exc.answer)
        except (errors.UpstreamJoinTimeout, errors.UpstreamClosed) as exc:
            observation.rejoin = RejoinTry(dropped, "unanswered", detail=str(exc))
        self.start_reading(session)
        if observation.rejoin is not None:
            await self.quiet(BYE_SECONDS)  # to record how the call ends, if it does
            return
        if self.options.mode.has_text:
            sent = await self.send_text(self.options.rejoin_text)
            answered = await self.answer(sent, profile.events.text_message, REPLY_SECONDS)
            if answered == ANSWERED:
                await self.quiet(REPLY_SECONDS)
        else:
            answered = await self.say(profile.audio_in, record=False)
        observation.rejoin = RejoinTry(dropped, "rejoined", answered=answered == ANSWERED)

    async def read(self, session: UpstreamSession) -> None:
        """Keep reading (the tap records); the session answers heartbeats meanwhile."""
        with contextlib.suppress(errors.UpstreamClosed):
            while True:
                await session.recv()

    async def finish(self) -> None:
        """Leave (each joined channel costs credits) and close, whatever happened."""
        session = self.session
        if session is not None and not self.closed and self.created is not None:
            self.observation.left_at = self.now()
            channels = tuple(c.value for c in CHANNELS_FOR_MODE[self.options.mode])
            with contextlib.suppress(errors.UpstreamClosed, TimeoutError):
                async with asyncio.timeout(2):
                    await session.leave(self.created.call_id, channels)
        if session is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(3):
                    await session.close()
        await self.stop_reading()


def _ways_to_connect(options: ProbeOptions, profile: UpstreamProfile) -> list[dict[str, Any]]:
    """The configured way first, then the plausible others (unless told not to guess)."""
    tries: list[dict[str, Any]] = [{}]
    if not options.guess:
        return tries
    fixed = options.fixed
    auth_by_call = {"CONNECT_AUTH": {"callId": "{callId}"}}
    if profile.transport is Transport.SOCKETIO:
        namespace = "SOCKET_PATH_AS" not in fixed and profile.socket_path_as is SocketPathAs.PATH
        if namespace:
            tries.append({"SOCKET_PATH_AS": SocketPathAs.NAMESPACE.value})
        if "CONNECT_AUTH" not in fixed and profile.connect.auth is None:
            tries.append(auth_by_call)
            if namespace:
                tries.append({"SOCKET_PATH_AS": SocketPathAs.NAMESPACE.value, **auth_by_call})
        if "TRANSPORT" not in fixed:
            tries.append({"TRANSPORT": Transport.WEBSOCKET.value})
    elif "TRANSPORT" not in fixed:
        tries.append({"TRANSPORT": Transport.SOCKETIO.value})
    return tries


def _merged(upstream: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(upstream))
    merged.update(copy.deepcopy(dict(changes)))
    return merged


def _create_hints(exc: errors.VoiceHubError, options: ProbeOptions) -> list[str]:
    if isinstance(exc, errors.UnsendableCredentials):
        return ["type the agent's API key and VoiceHub agent id again in the admin"]
    if isinstance(exc, errors.InvalidApiKey):
        return ["check the agent's API key in the admin (VoiceHub answered 401)"]
    if isinstance(exc, errors.AgentMisconfigured):
        return [
            "check the agent's VoiceHub agent id in the admin, and the agent's setup in "
            "VoiceHub's dashboard (VoiceHub answered 400)"
        ]
    if isinstance(exc, errors.InsufficientCredits):
        return ["add credits to the VoiceHub account (VoiceHub answered 403)"]
    if isinstance(exc, errors.OperationNotAllowed):
        other = "--mode text" if options.mode is not Mode.TEXT else "--mode TextAudio"
        return [f"this agent does not take {options.mode.value} calls: try {other}"]
    return [
        f"check UPSTREAM.URL (or --url): {options.base_url} did not answer create-web-call "
        "as VoiceHub does",
        "check this machine can reach it (proxy, firewall)",
    ]


def _socket_hints(options: ProbeOptions) -> list[str]:
    return [
        "if VoiceHub wants the key on the connection: "
        """--set 'CONNECT_AUTH={"token": "{apiKey}"}' or """
        """--set 'CONNECT_HEADERS={"x-api-access-key": "{apiKey}"}' """
        "(the key goes to VoiceHub only)",
        """if it wants the call in the URL: --set 'CONNECT_QUERY={"callId": "{callId}"}'""",
        "if webCallSocketPath is served under another Socket.IO path: "
        "--set SOCKET_PATH_AS=namespace --set SOCKETIO_PATH=/ws/",
        "ask Dataqueue which socket protocol the WebCall socket speaks"
        + ("" if options.guess else "; or drop --no-guess to let the probe try a few"),
    ]


def _join_hints(options: ProbeOptions) -> list[str]:
    return [
        "if VoiceHub uses other event names: "
        """--set 'EVENTS={"join": "...", "joined": "..."}'""",
        f"if the agent does not take {options.mode.value} calls' channels, try another --mode",
        "look at the events in the --out file for what VoiceHub said",
    ]
