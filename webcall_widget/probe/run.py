"""Learn what a real VoiceHub socket says: the engine of ``manage.py webcall_probe``.

:func:`run_probe` creates a real call (it costs one), opens its socket as the profile
says (trying a namespace, CONNECT auth with the call's id, or a plain WebSocket when
that fails, unless told not to guess), joins, then, each step ending when the agent has
been quiet a moment:

1. waits for the greeting;
2. sends a text (text modes);
3. sends a few seconds of speech-like audio (voice modes), and, if the agent does not
   react, sends it again in the shape the agent's own audio came in;
4. says goodbye (text modes), to see how a call ends;

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
    Analysis,
    Observation,
    Recorded,
    SpeechTry,
    agent_audio,
    analyse,
)
from webcall_widget.probe.speech import frames, silence, speech_like
from webcall_widget.voicehub import errors
from webcall_widget.voicehub.address import ConnectContext
from webcall_widget.voicehub.client import CreatedCall, create_web_call
from webcall_widget.voicehub.codecs import summarise
from webcall_widget.voicehub.events import CHANNELS_FOR_MODE, Mode, Transport
from webcall_widget.voicehub.profile import (
    AudioDirection,
    AudioShape,
    SocketPathAs,
    UpstreamProfile,
)
from webcall_widget.voicehub.profile_settings import build_profile
from webcall_widget.voicehub.protocol import load_protocol
from webcall_widget.voicehub.secret import Secret
from webcall_widget.voicehub.session import UpstreamSession, open_session

SPEECH_SECONDS = 2.0
SPEECH_TAIL = 0.8  # of silence, so that the agent's voice detector hears the end
REACTION_SECONDS = 3.0  # after our speech, for the agent to show it heard it
GREETING_SECONDS = 4.0  # longest wait for the greeting to end
REPLY_SECONDS = 6.0  # longest wait for a reply to end
BYE_SECONDS = 4.0  # longest wait for the agent to end the call after goodbye
GUESS_CONNECT_SECONDS = 4.0  # for each way of opening the socket tried


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
    seconds: float = 20.0
    text: str = "Hello! This is a connection test."
    bye: str = "Goodbye"
    guess: bool = True  # try other ways to open the socket when the configured one fails
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
        self.session: UpstreamSession | None = None
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
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._changed.wait()

    def time_left(self) -> float:
        return self.deadline - self.loop.time()

    # the steps

    async def run(self) -> None:
        options = self.options
        created = await self.create()
        session = await self.connect(created)
        reader = asyncio.create_task(self.read(session), name="webcall-probe-reader")
        try:
            await self.join(session, created.call_id)
            await self.quiet(GREETING_SECONDS)
            if options.mode.has_text and self.time_left() > 0 and not self.closed:
                await session.send_text(created.call_id, options.text)
                self.observation.sent_text = options.text
                await self.quiet(REPLY_SECONDS)
            if options.mode.has_audio and self.time_left() > 0 and not self.closed:
                await self.speak(session)
            if options.mode.has_text and options.bye and self.time_left() > 0 and not self.closed:
                await session.send_text(created.call_id, options.bye)
                await self.quiet(BYE_SECONDS)
            await self.quiet(max(0.0, self.time_left()))
            if self.time_left() <= 0 and not self.closed:
                self.result.notes.append(f"stopped after {options.seconds:g}s (--seconds)")
        finally:
            await self.finish(session, created.call_id, reader)

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
        self.result.created = created
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

    async def read(self, session: UpstreamSession) -> None:
        """Keep reading (the tap records); the session answers heartbeats meanwhile."""
        with contextlib.suppress(errors.UpstreamClosed):
            while True:
                await session.recv()

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

    async def speak(self, session: UpstreamSession) -> None:
        profile = self.observation.profile
        directions = [profile.audio_in]
        index = 0
        while index < len(directions) and self.time_left() > 0 and not self.closed:
            direction = directions[index]
            if index:  # a second try: speak in the shape the agent's audio came in
                session.protocol = load_protocol(dataclasses.replace(profile, audio_in=direction))
            heard = await self.say(session, direction)
            if heard:
                return
            mirrored = self._mirrored(profile)
            if index == 0 and mirrored is not None and mirrored != direction:
                directions.append(mirrored)
            index += 1

    def _mirrored(self, profile: UpstreamProfile) -> AudioDirection | None:
        """The visitor's audio in the shape the agent's came in, except where flags say."""
        seen = agent_audio(self.observation.records)
        if seen is None:
            return None
        fixed, configured = self.options.fixed, profile.audio_in
        shape = configured.shape if "AUDIO_IN_FORMAT" in fixed else seen.shape
        field = seen.field if seen.shape is not AudioShape.BINARY else configured.field
        return AudioDirection(
            configured.event if "AUDIO_IN_EVENT" in fixed else seen.event,
            shape,
            configured.field if "AUDIO_IN_FIELD" in fixed else field,
            configured.rate,
        )

    async def say(self, session: UpstreamSession, direction: AudioDirection) -> bool:
        """Send speech-like audio; whether the agent reacted."""
        rate = direction.rate
        chunks = frames(speech_like(SPEECH_SECONDS, rate) + silence(SPEECH_TAIL, rate), rate)
        started = self.now()
        self.tap(
            "out",
            direction.event,
            {"speech": f"{len(chunks)} frames of 20 ms, as {direction.describe()}"},
        )
        for number, chunk in enumerate(chunks):
            if self.closed:
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
        until = ended + REACTION_SECONDS
        heard = False
        while self.now() < until and not self.closed and self.time_left() > 0:
            if self._reacted(started):
                heard = True
                break
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.01, until - self.now())):
                    await self._changed.wait()
        heard = heard or self._reacted(started)
        self.observation.speech.append(SpeechTry(started, ended, direction, heard))
        if heard:
            await self.quiet(REPLY_SECONDS)
        return heard

    def _reacted(self, since: float) -> bool:
        """Whether something other than an error came after ``since``."""
        profile = self.observation.profile
        for record in self.observation.records:
            if record.t < since or record.direction != "in":
                continue
            name = record.event.lower()
            if record.event in (profile.events.error, profile.events.exception):
                continue
            if "error" in name or "exception" in name:
                continue
            return True
        return False

    async def finish(
        self, session: UpstreamSession, call_id: str, reader: asyncio.Task[None]
    ) -> None:
        """Leave (each joined channel costs credits) and close, whatever happened."""
        if not self.closed:
            self.observation.left_at = self.now()
            channels = tuple(c.value for c in CHANNELS_FOR_MODE[self.options.mode])
            with contextlib.suppress(errors.UpstreamClosed, TimeoutError):
                async with asyncio.timeout(2):
                    await session.leave(call_id, channels)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                await session.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


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
