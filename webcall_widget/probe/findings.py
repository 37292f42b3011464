"""What a probe's recording says about VoiceHub's socket, and the settings that follow.

Pure functions over what :mod:`~webcall_widget.probe.run` recorded: which event
carries agent audio and in which shape, at what sample rate; which event carries
messages, in which fields, with which role values, streamed how; how the join was
confirmed; which names VoiceHub took for the visitor's text and audio; how the call
ended; whether a new socket could join it again; what went unused. :func:`analyse`
turns that into sentences, the ``WEBCALL_WIDGET["UPSTREAM"]`` settings to use, and what
the run could not learn.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from webcall_widget.probe.guesses import unknown_event_named
from webcall_widget.voicehub.codecs import looks_like_base64_audio
from webcall_widget.voicehub.profile import (
    AudioDirection,
    AudioShape,
    CallEnd,
    JoinConfirmation,
    MessageFields,
    MessageUpdates,
    Rejoin,
    UpstreamProfile,
)
from webcall_widget.voicehub.profile_settings import build_profile
from webcall_widget.voicehub.rate import RateMeter

TEXT_FIELDS = ("text", "content", "message", "transcript", "delta", "body", "utterance")
ROLE_FIELDS = ("role", "speaker", "from", "sender", "author", "source", "participant")
ID_FIELDS = ("id", "messageId", "message_id", "itemId", "item_id", "turnId", "turn_id")
FINAL_FIELDS = ("final", "isFinal", "is_final", "done", "complete", "completed")
AGENT_ROLES = frozenset({"agent", "assistant", "bot", "ai", "model", "system"})
END_WORDS = ("end", "hangup", "hang_up", "finish", "terminate", "close")
END_EVENT_WITHIN = 3.0  # seconds before the socket closed

# What no run of the probe can learn, whatever VoiceHub does: printed with every report
# (docs/probe-limits.md says the same at more length).
LIMITS = (
    "an event name VoiceHub ignores without an error: other names for typed text are "
    "tried only when VoiceHub answers with an error naming the event, and visitor audio "
    "only under the names and shapes the agent's own audio suggests",
    "the barge-in event (EVENTS audio_clear): the probe does not talk over the agent",
    "INPUT_SAMPLE_RATE: an agent may react to speech sent at the wrong rate",
    "how VoiceHub ends a call the agent did not end during the probe (its own time "
    "limits): CALL_END 'either' takes a closed socket as the end",
    "credentials it was not given: the API key is never sent unless a CONNECT_ setting "
    "asks for it",
    "rejoin is tried once, after a dropped socket (a crash); a second socket joining "
    "while the first is still open (a handover), and how long VoiceHub keeps a dropped "
    "call, are not",
)


@dataclass(frozen=True, slots=True)
class Recorded:
    """One thing that crossed the socket, ``t`` seconds after it opened. ``direction``:
    "in", "out", "ack" (an acknowledgement of ours), "closed" (the socket ended)."""

    t: float
    direction: str
    event: str
    data: Any = None


# How VoiceHub answered something the probe sent: the agent reacted ("answered"), an
# error said VoiceHub does not know the event ("unknown"), an error named the event
# otherwise, as for a payload it cannot read ("refused"), or nothing came ("silent").
ANSWERED, UNKNOWN, REFUSED, SILENT = "answered", "unknown", "refused", "silent"


@dataclass(frozen=True, slots=True)
class SpeechTry:
    """Speech-like audio the probe sent in one up-direction shape, and how VoiceHub
    answered (the agent reacting: a message or its audio, after it started)."""

    started: float
    ended: float
    direction: AudioDirection
    answer: str

    @property
    def heard(self) -> bool:
        return self.answer == ANSWERED


@dataclass(frozen=True, slots=True)
class TextTry:
    """The probe's text sent as event ``name`` at ``sent``, and how VoiceHub answered."""

    name: str
    sent: float
    answer: str


@dataclass(frozen=True, slots=True)
class RejoinTry:
    """The probe dropped its socket mid-call at ``dropped``, opened another and joined the
    call again. ``outcome``: "rejoined", "refused" (an error, an end or a close instead
    of a confirmation), "no-socket" (the second socket did not open), "unanswered"
    (nothing confirmed the join). ``answered``: whether the agent then answered on the
    new socket (None: not asked). ``detail``: what VoiceHub said or what failed."""

    dropped: float
    outcome: str
    answered: bool | None = None
    detail: str = ""


@dataclass
class Observation:
    """What the probe did and saw."""

    configured: dict[str, Any]  # the UPSTREAM settings it started from, flags applied
    profile: UpstreamProfile  # the profile the socket opened with
    connected_with: dict[str, Any] = field(default_factory=dict)  # changes that made it
    records: list[Recorded] = field(default_factory=list)
    sent_text: str | None = None
    speech: list[SpeechTry] = field(default_factory=list)
    texts: list[TextTry] = field(default_factory=list)  # each name the text was sent as
    rejoin: RejoinTry | None = None
    rejoin_skipped: str = ""  # why the rejoin was not tried
    left_at: float | None = None  # when the probe left (None: it did not get to)
    completed: bool = False  # every step ran (the probe did not fail halfway)


@dataclass
class Analysis:
    findings: list[str] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)  # of UPSTREAM settings
    suggested: dict[str, Any] = field(default_factory=dict)  # the UPSTREAM settings to use
    # What this run could not learn, each a sentence with what to do about it.
    unlearnt: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AudioSeen:
    event: str
    shape: AudioShape
    field: str
    chunks: int
    size: int  # bytes of PCM


@dataclass(frozen=True, slots=True)
class MessagesSeen:
    event: str
    fields: MessageFields
    roles: tuple[str, ...]  # in order of appearance
    count: int


def audio_of(record: Recorded) -> tuple[AudioShape, str, int] | None:
    """The shape, field and size of the audio in one received event, if it carries any."""
    data = record.data
    if isinstance(data, bytes | bytearray | memoryview):
        return AudioShape.BINARY, "", len(data)
    if isinstance(data, Mapping):
        for key, value in data.items():
            if isinstance(value, bytes | bytearray | memoryview):
                return AudioShape.OBJECT, str(key), len(value)
            decoded = looks_like_base64_audio(value)
            if decoded is not None:
                return AudioShape.BASE64, str(key), len(decoded)
    return None


def agent_audio(records: Iterable[Recorded]) -> AudioSeen | None:
    """The event that carried the most agent audio, and how."""
    totals: Counter[tuple[str, AudioShape, str]] = Counter()
    chunks: Counter[tuple[str, AudioShape, str]] = Counter()
    for record in records:
        if record.direction != "in":
            continue
        found = audio_of(record)
        if found is not None:
            key = (record.event, found[0], found[1])
            totals[key] += found[2]
            chunks[key] += 1
    if not totals:
        return None
    (event, shape, name), size = totals.most_common(1)[0]
    return AudioSeen(event, shape, name, chunks[(event, shape, name)], size)


def measured_rate(records: Iterable[Recorded], audio: AudioSeen, configured: int) -> RateMeter:
    meter = RateMeter(configured)
    for record in records:
        if record.direction == "in" and record.event == audio.event:
            found = audio_of(record)
            if found is not None:
                meter.feed(found[2], record.t)
    return meter


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _is_id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def _is_flag(value: Any) -> bool:
    return isinstance(value, bool)


def _find(data: Any, names: Iterable[str], accept: Callable[[Any], bool]) -> str | None:
    """The dotted path of the first of ``names`` whose value ``accept`` takes, at the top
    level or one object down."""
    if not isinstance(data, Mapping):
        return None
    names = tuple(names)
    for name in names:
        if name in data and accept(data[name]):
            return name
    for key, value in data.items():
        if isinstance(value, Mapping):
            for name in names:
                if name in value and accept(value[name]):
                    return f"{key}.{name}"
    return None


def _is_error_like(record: Recorded, profile: UpstreamProfile) -> bool:
    name = record.event.lower()
    if record.event in (profile.events.error, profile.events.exception):
        return True
    return "error" in name or "exception" in name


def error_message(record: Recorded) -> str:
    data = record.data
    message = data.get("message") if isinstance(data, Mapping) else None
    return str(message if message else data)


def answer_to(
    records: Iterable[Recorded], since: float, event: str, profile: UpstreamProfile
) -> str:
    """How VoiceHub answered our ``event`` sent at ``since``, from what came after it:
    ANSWERED (something other than an error), UNKNOWN or REFUSED (an error naming it),
    SILENT. An answer of the agent wins over errors."""
    answer = SILENT
    for record in records:
        if record.t < since or record.direction != "in":
            continue
        if not _is_error_like(record, profile):
            return ANSWERED
        message = error_message(record)
        if unknown_event_named(message) == event:
            answer = UNKNOWN
        elif event in message and answer == SILENT:
            answer = REFUSED
    return answer


def messages(records: Iterable[Recorded], profile: UpstreamProfile) -> MessagesSeen | None:
    """The event that carried messages (a text field, not an error), and its fields."""
    candidates: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        if record.direction != "in" or _is_error_like(record, profile):
            continue
        if not isinstance(record.data, Mapping) or audio_of(record) is not None:
            continue
        if _find(record.data, TEXT_FIELDS, _is_text) is not None:
            candidates.setdefault(record.event, []).append(record.data)
    if not candidates:
        return None
    event, payloads = max(candidates.items(), key=lambda item: len(item[1]))

    def common(names: Iterable[str], accept: Callable[[Any], bool]) -> str | None:
        found = Counter(p for p in (_find(d, names, accept) for d in payloads) if p)
        return found.most_common(1)[0][0] if found else None

    text = common(TEXT_FIELDS, _is_text) or "text"
    role = common(ROLE_FIELDS, _is_text)
    message_id = common(ID_FIELDS, _is_id)
    final = common(FINAL_FIELDS, _is_flag)
    roles: list[str] = []
    if role is not None:
        for payload in payloads:
            value = _pick(payload, role)
            if isinstance(value, str) and value not in roles:
                roles.append(value)
    fields = MessageFields(id=message_id, role=role or "role", text=text, final=final)
    return MessagesSeen(event, fields, tuple(roles), len(payloads))


def _pick(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


def analyse(observation: Observation) -> Analysis:
    """The findings, and the settings that follow from them."""
    result = Analysis()
    changes = dict(observation.connected_with)
    if observation.connected_with:
        result.findings.append(
            "the socket opened only with "
            + ", ".join(f"{k} = {v!r}" for k, v in observation.connected_with.items())
        )
    _join(observation, result, changes)
    _audio_out(observation, result, changes)
    _audio_in(observation, result, changes)
    _messages(observation, result, changes)
    _text_in(observation, result, changes)
    _end(observation, result, changes)
    _rejoin(observation, result, changes)
    result.changes = changes
    result.suggested = _merged(observation.configured, changes)
    _leftovers(observation, result, build_profile(result.suggested))
    return result


def _join(observation: Observation, result: Analysis, changes: dict[str, Any]) -> None:
    profile = observation.profile
    joined_name = profile.events.joined
    records = observation.records
    acks = [r for r in records if r.direction == "ack" and r.event == profile.events.join]
    events = [
        r
        for r in records
        if r.direction == "in"
        and (r.event == joined_name or "join" in r.event.lower())
        and not _is_error_like(r, profile)
    ]
    if events:
        name = events[0].event
        result.findings.append(f"the join was confirmed by event {name!r}")
        if name != joined_name:
            changes["EVENTS"] = {**changes.get("EVENTS", {}), "joined": name}
        if profile.join_confirmation is not JoinConfirmation.EVENT:
            changes["JOIN_CONFIRMATION"] = JoinConfirmation.EVENT.value
    elif acks and acks[0].data not in (None, [], {}):
        result.findings.append("the join was confirmed by a Socket.IO acknowledgement")
        if profile.join_confirmation is not JoinConfirmation.ACK:
            changes["JOIN_CONFIRMATION"] = JoinConfirmation.ACK.value
    elif any(r.direction == "in" for r in records):
        result.findings.append(
            "nothing confirmed the join, but events came: the relay can take the call as "
            "live once it has joined"
        )
        if profile.join_confirmation is not JoinConfirmation.NONE:
            changes["JOIN_CONFIRMATION"] = JoinConfirmation.NONE.value
    else:
        result.findings.append("nothing came after the join")


def _audio_out(observation: Observation, result: Analysis, changes: dict[str, Any]) -> None:
    profile = observation.profile
    seen = agent_audio(observation.records)
    if seen is None:
        if profile.audio_out.event:
            result.findings.append(
                "no agent audio arrived" + ("" if _has_audio(observation) else " (a text call)")
            )
        return
    if seen.shape is AudioShape.BINARY:
        how = "as binary"
    elif seen.shape is AudioShape.OBJECT:
        how = f"as binary in field `{seen.field}`"
    else:
        how = f"as base64 in field `{seen.field}`"
    configured = profile.audio_out
    meter = measured_rate(observation.records, seen, configured.rate)
    finding = meter.finding
    if finding is None:
        rate = "not enough continuous audio to measure its sample rate"
    elif finding.matches:
        rate = f"~{configured.rate} Hz, as set"
    elif finding.likely is not None:
        rate = f"~{finding.likely} Hz"
        changes["OUTPUT_SAMPLE_RATE"] = finding.likely
    else:
        rate = (
            f"{finding.observed:.0f} samples/s, {finding.ratio:.1f}x real time at "
            f"{configured.rate} Hz: it may come in bursts; listen to it to tell the rate"
        )
    result.findings.append(
        f"agent audio arrived {how} of event `{seen.event}` "
        f"({seen.chunks} chunks, {seen.size} bytes), {rate}"
    )
    if seen.event != configured.event:
        changes["AUDIO_OUT_EVENT"] = seen.event
    if seen.shape is not configured.shape:
        changes["AUDIO_OUT_FORMAT"] = seen.shape.value
    if seen.shape is not AudioShape.BINARY and seen.field != configured.field:
        changes["AUDIO_OUT_FIELD"] = seen.field


def _has_audio(observation: Observation) -> bool:
    return bool(observation.speech)


def _audio_in(observation: Observation, result: Analysis, changes: dict[str, Any]) -> None:
    if not observation.speech:
        return
    configured = observation.profile.audio_in
    heard = next((attempt for attempt in observation.speech if attempt.heard), None)
    before = observation.speech[: observation.speech.index(heard)] if heard else []
    if heard is None:
        tried = "; ".join(
            f"{attempt.direction.describe()} ({_said(attempt.answer)})"
            for attempt in observation.speech
        )
        result.findings.append(f"the agent did not react to our speech-like audio: {tried}")
        result.unlearnt.append(
            "how VoiceHub wants the visitor's audio: set AUDIO_IN_EVENT, AUDIO_IN_FORMAT, "
            "AUDIO_IN_FIELD or INPUT_SAMPLE_RATE with --set and probe again (ask Dataqueue "
            "for the event that carries it)"
        )
        return
    result.findings.append(
        f"the agent reacted to our audio sent as {heard.direction.describe()}"
        + (
            ""
            if not before
            else " (before that: "
            + "; ".join(f"{a.direction.describe()}: {_said(a.answer)}" for a in before)
            + ")"
        )
    )
    if heard.direction.event != configured.event:
        changes["AUDIO_IN_EVENT"] = heard.direction.event
    if heard.direction.shape is not configured.shape:
        changes["AUDIO_IN_FORMAT"] = heard.direction.shape.value
    if heard.direction.shape is not AudioShape.BINARY and heard.direction.field != (
        configured.field
    ):
        changes["AUDIO_IN_FIELD"] = heard.direction.field


def _said(answer: str) -> str:
    return {
        ANSWERED: "answered",
        UNKNOWN: "VoiceHub answered that it does not know the event",
        REFUSED: "VoiceHub answered with an error naming the event",
        SILENT: "no reaction",
    }[answer]


def _text_in(observation: Observation, result: Analysis, changes: dict[str, Any]) -> None:
    """Which name VoiceHub took the visitor's typed text as, when the configured one was
    refused and others were tried."""
    tries = observation.texts
    if len(tries) < 2 and not any(t.answer in (UNKNOWN, REFUSED) for t in tries):
        return
    answered = next((t for t in tries if t.answer == ANSWERED), None)
    before = tries[: tries.index(answered)] if answered else tries
    refused = ", ".join(f"`{t.name}` ({_said(t.answer)})" for t in before)
    if answered is None:
        result.findings.append(f"VoiceHub took typed text under none of these names: {refused}")
        result.unlearnt.append(
            "the event that carries the visitor's typed text: set EVENTS text_message with "
            """--set 'EVENTS={"text_message": "..."}' and probe again (ask Dataqueue for it)"""
        )
        return
    if answered is tries[0]:
        return
    result.findings.append(
        f"typed text was answered when sent as event `{answered.name}`, not before: {refused}"
    )
    changes["EVENTS"] = {**changes.get("EVENTS", {}), "text_message": answered.name}


def _messages(observation: Observation, result: Analysis, changes: dict[str, Any]) -> None:
    profile = observation.profile
    seen = messages(observation.records, profile)
    if seen is None:
        result.findings.append("no messages (events with a text field) arrived")
        return
    fields = seen.fields
    parts = [f"text in `{fields.text}`"]
    parts.append(f"role in `{fields.role}`" if seen.roles else "no role field")
    parts.append(f"id in `{fields.id}`" if fields.id else "no id (the relay numbers turns)")
    parts.append(f"final in `{fields.final}`" if fields.final else "no final flag")
    if seen.event != profile.events.created:
        changes["EVENTS"] = {**changes.get("EVENTS", {}), "created": seen.event}
    configured = profile.message_fields
    field_changes: dict[str, Any] = {}
    for part in ("role", "text"):
        if getattr(fields, part) != getattr(configured, part) and (part != "role" or seen.roles):
            field_changes[part] = getattr(fields, part)
    for part in ("id", "final"):
        if getattr(fields, part) is not None and getattr(fields, part) != getattr(
            configured, part
        ):
            field_changes[part] = getattr(fields, part)
    if field_changes:
        changes["MESSAGE_FIELDS"] = field_changes
    visitor = _visitor_roles(observation, seen)
    if seen.roles:
        agent = [role for role in seen.roles if role not in visitor]
        parts.append(
            "roles "
            + ", ".join(repr(r) for r in seen.roles)
            + (f" (the visitor: {', '.join(repr(v) for v in visitor)})" if visitor else "")
        )
        if visitor and not set(visitor) & set(profile.visitor_roles):
            changes["VISITOR_ROLES"] = list(visitor)
        elif not visitor:
            parts.append(
                f"the visitor's role was not seen ({', '.join(repr(a) for a in agent)} is the "
                "agent's); a voice call (--mode TextAudio) usually shows it"
            )
    updates = _updates(observation, seen)
    if updates is not None:
        appends = updates is MessageUpdates.APPEND
        parts.append(
            "a repeated message " + ("adds a piece" if appends else "repeats the whole text")
        )
        if updates is not profile.message_updates:
            changes["MESSAGE_UPDATES"] = updates.value
    result.findings.append(f"messages arrived as event `{seen.event}`: " + "; ".join(parts))


def _visitor_roles(observation: Observation, seen: MessagesSeen) -> list[str]:
    role_field = seen.fields.role
    text_field = seen.fields.text
    visitor: list[str] = []
    sent = (observation.sent_text or "").strip()
    first_role: str | None = None
    for record in observation.records:
        if record.direction != "in" or record.event != seen.event:
            continue
        role = _pick(record.data, role_field)
        if not isinstance(role, str):
            continue
        if first_role is None:
            first_role = role
        text = _pick(record.data, text_field)
        echoed = isinstance(text, str) and sent and text.strip() == sent
        if (echoed or (role != first_role and role.lower() not in AGENT_ROLES)) and (
            role not in visitor
        ):
            visitor.append(role)
    return visitor


def _updates(observation: Observation, seen: MessagesSeen) -> MessageUpdates | None:
    """How repeated messages (the same id, or one role's pieces before a final) relate."""
    groups: dict[str, list[str]] = {}
    open_turn: dict[str, str] = {}
    turns = 0
    for record in observation.records:
        if record.direction != "in" or record.event != seen.event:
            continue
        text = _pick(record.data, seen.fields.text)
        if not isinstance(text, str):
            continue
        final = seen.fields.final is None or _pick(record.data, seen.fields.final) is not False
        if seen.fields.id is not None and _pick(record.data, seen.fields.id) is not None:
            key = str(_pick(record.data, seen.fields.id))
        else:
            role = str(_pick(record.data, seen.fields.role))
            if role not in open_turn:
                turns += 1
                open_turn[role] = f"turn-{turns}"
            key = open_turn[role]
            if final:
                del open_turn[role]
        groups.setdefault(key, []).append(text)
    verdicts = []
    for texts in groups.values():
        if len(texts) < 2:
            continue
        growing = all(b.startswith(a) for a, b in zip(texts, texts[1:], strict=False))
        verdicts.append(MessageUpdates.REPLACE if growing else MessageUpdates.APPEND)
    if not verdicts:
        return None
    return Counter(verdicts).most_common(1)[0][0]


def _end(observation: Observation, result: Analysis, changes: dict[str, Any]) -> None:
    profile = observation.profile
    records = observation.records
    closed = next((r for r in records if r.direction == "closed"), None)
    ended_by_us = (
        observation.left_at is not None and closed is not None and closed.t >= observation.left_at
    )
    rejoin = observation.rejoin
    if (
        closed is not None
        and rejoin is not None
        and rejoin.outcome == "refused"
        and closed.t >= rejoin.dropped
    ):
        result.findings.append(
            "the call ended when VoiceHub refused the rejoin, before the agent ended it"
        )
        _end_unseen(observation, result, changes)
        return
    if closed is None or ended_by_us:
        result.findings.append("the call did not end by itself during the probe")
        if observation.completed:
            _end_unseen(observation, result, changes)
        return
    before = [
        r
        for r in records
        if r.direction == "in"
        and closed.t - END_EVENT_WITHIN <= r.t <= closed.t
        and not _is_error_like(r, profile)
    ]
    unused = _unused_names(observation, profile)
    end_event = (
        next((r for r in reversed(before) if r.event == profile.events.call_ended), None)
        or next(
            (r for r in reversed(before) if any(word in r.event.lower() for word in END_WORDS)),
            None,
        )
        or next((r for r in reversed(before) if r.event in unused), None)
    )
    hung_up = isinstance(closed.data, Mapping) and bool(closed.data.get("by_upstream"))
    if end_event is not None:
        result.findings.append(
            f"the agent ended the call with event `{end_event.event}`, then the socket closed"
        )
        if end_event.event != profile.events.call_ended:
            changes["EVENTS"] = {**changes.get("EVENTS", {}), "call_ended": end_event.event}
    elif hung_up:
        result.findings.append(
            "the agent ended the call by closing the socket, without an end event"
        )
        if profile.call_end is CallEnd.EVENT:
            changes["CALL_END"] = CallEnd.EITHER.value
    else:
        result.findings.append(f"the socket failed: {closed.event}")


def _end_unseen(observation: Observation, result: Analysis, changes: dict[str, Any]) -> None:
    """The probe did not see how VoiceHub ends a call: with CALL_END "either", a call it
    ends by closing the socket ends normally rather than as a lost connection."""
    profile = observation.profile
    if profile.call_end is CallEnd.DISCONNECT:
        taken = "CALL_END 'disconnect' takes a closed socket as the end"
    else:
        taken = (
            f"CALL_END 'either' takes `{profile.events.call_ended}` or a closed socket as the end"
        )
    result.unlearnt.append(
        "how VoiceHub ends a call, as the agent did not end it during the probe: " + taken
    )
    if profile.call_end is CallEnd.EVENT:
        changes["CALL_END"] = CallEnd.EITHER.value


def _unused_names(observation: Observation, profile: UpstreamProfile) -> set[str]:
    """Events VoiceHub sent that nothing else explains (not audio, messages, the join's
    confirmation, an error, or one of the configured names)."""
    seen_audio = agent_audio(observation.records)
    seen_messages = messages(observation.records, profile)
    names = profile.events
    explained = {
        names.joined,
        names.audio_clear,
        names.created,
        seen_audio.event if seen_audio else "",
        seen_messages.event if seen_messages else "",
    }
    return {
        r.event
        for r in observation.records
        if r.direction == "in" and r.event not in explained and not _is_error_like(r, profile)
    }


def _rejoin(observation: Observation, result: Analysis, changes: dict[str, Any]) -> None:
    configured = observation.profile.rejoin
    rejoin = observation.rejoin
    if rejoin is None:
        if observation.rejoin_skipped:
            result.findings.append(f"rejoin not tried: {observation.rejoin_skipped}")
            result.unlearnt.append(
                "whether VoiceHub lets a new socket join a call under way (REJOIN): probe "
                "again without --no-rejoin, with --seconds long enough"
            )
        return
    works = rejoin.outcome == "rejoined" and rejoin.answered is not False
    if works:
        result.findings.append(
            "rejoin works: a new socket joined the call under way after the first was "
            "dropped, and the agent "
            + ("answered on it" if rejoin.answered else "kept the call (not asked to answer)")
        )
        if configured is not Rejoin.AUTO:
            changes["REJOIN"] = Rejoin.AUTO.value
        return
    if rejoin.outcome == "rejoined":
        why = "a new socket joined the call under way, but the agent did not answer on it"
    elif rejoin.outcome == "refused":
        why = f"VoiceHub refused a new socket for the call under way ({rejoin.detail})"
    elif rejoin.outcome == "no-socket":
        why = f"a second socket for the call under way did not open ({rejoin.detail})"
    else:
        why = f"nothing confirmed a second socket's join of the call under way ({rejoin.detail})"
    result.findings.append(why + ": calls cannot move to another process (REJOIN 'never')")
    if configured is not Rejoin.NEVER:
        changes["REJOIN"] = Rejoin.NEVER.value


def _leftovers(observation: Observation, result: Analysis, suggested: UpstreamProfile) -> None:
    profile = observation.profile
    seen_audio = agent_audio(observation.records)
    seen_messages = messages(observation.records, profile)
    used = {
        suggested.events.joined,
        suggested.events.call_ended,
        suggested.events.audio_clear,
        seen_audio.event if seen_audio else "",
        seen_messages.event if seen_messages else "",
    }
    errors: Counter[str] = Counter()
    unused: Counter[str] = Counter()
    for record in observation.records:
        if record.direction != "in" or record.event in used:
            continue
        if _is_error_like(record, profile):
            errors[error_message(record)[:120]] += 1
        else:
            unused[record.event] += 1
    if errors:
        listed = "; ".join(f"{text!r} x{n}" for text, n in errors.most_common(5))
        result.findings.append(f"error events: {listed}")
    if unused:
        listed = ", ".join(f"`{name}` x{n}" for name, n in unused.most_common(10))
        result.findings.append(f"events the relay will not use: {listed}")


def _merged(configured: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(configured))
    for key, value in changes.items():
        if key in ("EVENTS", "MESSAGE_FIELDS") and isinstance(value, Mapping):
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = value
    return merged
