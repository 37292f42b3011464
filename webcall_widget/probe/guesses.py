"""The names and shapes the probe tries when VoiceHub does not take what it sends.

Pure functions. VoiceHub documents only its join events, so the probe starts from the
configured names and, when they fail, tries what VoiceHub's own events suggest:

* visitor audio the agent does not react to: the agent's audio event mirrored
  (``audio.out`` → ``audio.in``, ``agentAudio`` → ``userAudio``), then the agent's own
  name, in the shapes VoiceHub is likely to read;
* an event VoiceHub answers with an error naming it ("Unknown event text.message"):
  common names for it, first those sharing a prefix or a suffix with the events VoiceHub
  sends, written in VoiceHub's style (``chat.message``, ``chat_message``,
  ``chatMessage``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from webcall_widget.voicehub.events import EventNames, Transport
from webcall_widget.voicehub.profile import AudioDirection, AudioShape

# A direction word of the agent's audio event, and the visitor's word for it.
MIRRORS: Mapping[str, str] = {
    "output": "input",
    "out": "in",
    "outgoing": "incoming",
    "outbound": "inbound",
    "downstream": "upstream",
    "down": "up",
    "agent": "user",
    "assistant": "user",
    "bot": "user",
    "ai": "user",
    "server": "client",
    "playback": "capture",
}
# Suffixes that make the visitor's audio event of an agent event without a direction
# word ("media" → "media.in").
INPUT_SUFFIXES = ("in", "input")
# Names a VoiceHub may give the visitor's typed text, most likely first, written dotted.
TEXT_EVENT_NAMES = (
    "text.message",
    "chat.message",
    "message",
    "chat",
    "text",
    "user.message",
    "message.send",
    "chat.send",
    "text.send",
    "message.create",
    "text.input",
    "input.text",
    "user.text",
    "client.message",
    "conversation.message",
)
LIKELIEST = 5  # of TEXT_EVENT_NAMES, tried before names made of VoiceHub's own words
MAX_NAME_TRIES = 12
MAX_AUDIO_TRIES = 6
_SEPARATORS = ".:_-/"
# Splits an event name into words, keeping what was between them (a separator, or
# nothing at a camelCase boundary).
_WORDS = re.compile(r"([.:_\-/]|(?<=[a-z0-9])(?=[A-Z]))")
_NAME = r"[\"'`‘“]?(?P<name>[A-Za-z0-9_.:/\-]*[A-Za-z0-9])[\"'`’”]?"
_UNKNOWN_EVENT = (
    re.compile(
        r"\b(?:unknown|unsupported|unhandled|unrecogni[sz]ed|unexpected|invalid|no handler for)"
        r"(?:\s+the)?\s+(?:event|message type)(?:\s+(?:name|type))?\s*[:=]?\s*" + _NAME,
        re.IGNORECASE,
    ),
    re.compile(
        r"\bevent\s*[:=]?\s*" + _NAME + r"\s+(?:is\s+)?(?:not\s+(?:supported|handled|known|"
        r"found|allowed|recogni[sz]ed)|unknown)",
        re.IGNORECASE,
    ),
)


def unknown_event_named(message: Any) -> str | None:
    """The event an error message says VoiceHub does not know, if it says so:
    "Unknown event text.message", "unknown event 'audio.chunk'", "event x not supported"."""
    if not isinstance(message, str):
        return None
    for pattern in _UNKNOWN_EVENT:
        found = pattern.search(message)
        if found:
            return found.group("name")
    return None


def words(name: str) -> list[str]:
    """``name`` cut into words and what stood between them: ``["audio", ".", "out"]``,
    ``["agent", "", "Audio"]``; joined again, they are ``name``."""
    return _WORDS.split(name)


def _restyled(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def mirrored(event: str, style: str = ".") -> list[str]:
    """The visitor's audio event that the agent's ``event`` suggests: its direction words
    mirrored (all of them, then each alone), or, with none, ``event`` with an input
    suffix (joined with ``event``'s own separator, else ``style``)."""
    parts = words(event)
    positions = [
        index
        for index in range(0, len(parts), 2)
        if parts[index].lower() in MIRRORS and parts[index]
    ]
    if not positions:
        separator = next((c for c in event if c in _SEPARATORS), style)
        return [event + _joined(separator, suffix) for suffix in INPUT_SUFFIXES]
    found: list[str] = []
    for chosen in ([*positions], *([p] for p in positions)):
        changed = list(parts)
        for index in chosen:
            changed[index] = _restyled(MIRRORS[parts[index].lower()], parts[index])
        found.append("".join(changed))
    return list(dict.fromkeys(found))


def _joined(separator: str, word: str) -> str:
    return word[:1].upper() + word[1:] if separator == "" else separator + word


def style_of(names: Iterable[str]) -> str:
    """The separator VoiceHub's own event names use most ("" for camelCase), "." when
    they say nothing."""
    counts: Counter[str] = Counter()
    for name in names:
        parts = words(name)
        counts.update(parts[index] for index in range(1, len(parts), 2))
    return counts.most_common(1)[0][0] if counts else "."


def styled(dotted: str, separator: str) -> str:
    """A dotted name written with ``separator`` ("" for camelCase)."""
    head, *rest = dotted.split(".")
    if separator == "":
        return head + "".join(word[:1].upper() + word[1:] for word in rest)
    return separator.join([head, *rest])


def _ends(name: str) -> tuple[str, str]:
    parts = words(name)
    return parts[0].lower(), parts[-1].lower()


def text_event_names(rejected: Iterable[str], heard: Iterable[str]) -> list[str]:
    """Names to try for the visitor's typed text, VoiceHub having rejected ``rejected``
    and sent ``heard``: common names in VoiceHub's style, those sharing a first or last
    word with an event it sends first, the likeliest of the others next, then the
    rejected name's last word after the first words VoiceHub uses (``call.message`` when
    it sends ``call.finished``), then the rest."""
    heard = [name for name in dict.fromkeys(heard) if not _documented(name)]
    rejected = list(dict.fromkeys(rejected))
    separator = style_of(heard)
    firsts = {_ends(name)[0] for name in heard}
    lasts = {_ends(name)[1] for name in heard}
    common = [styled(name, separator) for name in TEXT_EVENT_NAMES]
    related = [name for name in common if _ends(name)[0] in firsts or _ends(name)[1] in lasts]
    combined = [
        words(other)[0] + _joined(separator, words(name)[-1])
        for name in rejected
        for other in heard
        if len(words(other)) > 1
    ]
    ordered = [*related, *common[:LIKELIEST], *combined, *common[LIKELIEST:]]
    candidates = [name for name in dict.fromkeys(ordered) if name not in rejected]
    return candidates[:MAX_NAME_TRIES]


def _documented(name: str) -> bool:
    """Events VoiceHub documents or that every server sends: they say nothing of style."""
    names = EventNames()
    return name in (names.join, names.joined, names.leave, names.error, names.exception)


def audio_in_tries(
    tried: Iterable[tuple[AudioDirection, str]],
    agent: AudioDirection | None,
    *,
    transport: Transport,
    heard: Iterable[str] = (),
) -> list[AudioDirection]:
    """The ways to send the visitor's audio still worth a try, after ``tried`` (each
    direction with how VoiceHub answered it: "unknown" when an error said it does not
    know the event, "refused" when an error named the event otherwise, as for a payload
    it cannot read, "silent" when nothing came), ``agent`` being how the agent's audio
    arrived (None: none did).

    Events: the one VoiceHub refused a payload of (it knows it), else the mirrors of
    the agent's event, the agent's event itself, then the configured one; never one it
    said it does not know. Shapes, for each: the agent's, the first tried, then the
    others. On a plain WebSocket, binary audio is a bare frame whatever its event."""
    tried = list(tried)
    if not tried:
        return []
    first = tried[0][0]
    unknown = {d.event for d, answer in tried if answer == "unknown"}
    known = [d.event for d, answer in tried if answer == "refused"]
    style = style_of(heard)
    if known:
        events = known[:1]
    else:
        events = [*mirrored(agent.event, style), agent.event] if agent else []
        events.append(first.event)
    events = [e for e in dict.fromkeys(events) if e not in unknown]
    shapes = []
    if agent is not None:
        shapes.append((agent.shape, agent.field))
    shapes += [
        (first.shape, first.field),
        (AudioShape.BASE64, "audio"),
        (AudioShape.OBJECT, "audio"),
        (AudioShape.BINARY, first.field),
    ]
    if agent is not None:
        shapes += [(AudioShape.BASE64, agent.field), (AudioShape.OBJECT, agent.field)]
    done = {_key(d, transport) for d, _ in tried}
    found: list[AudioDirection] = []
    for event in events:
        for shape, field in dict.fromkeys(shapes):
            if shape is AudioShape.OBJECT and transport is Transport.WEBSOCKET:
                continue
            direction = AudioDirection(event, shape, field, first.rate)
            key = _key(direction, transport)
            if key not in done:
                done.add(key)
                found.append(direction)
    return found[: max(0, MAX_AUDIO_TRIES - len(tried))]


def _key(direction: AudioDirection, transport: Transport) -> tuple[str, AudioShape, str]:
    """What makes two ways of sending audio differ on the wire."""
    if direction.shape is AudioShape.BINARY:
        event = "" if transport is Transport.WEBSOCKET else direction.event
        return event, direction.shape, ""
    return direction.event, direction.shape, direction.field
