"""The names and shapes the probe tries when VoiceHub does not take what it sends."""

from __future__ import annotations

import pytest

from webcall_widget.probe.guesses import (
    MAX_AUDIO_TRIES,
    audio_in_tries,
    mirrored,
    style_of,
    text_event_names,
    unknown_event_named,
)
from webcall_widget.voicehub.events import Transport
from webcall_widget.voicehub.profile import AudioDirection, AudioShape


@pytest.mark.parametrize(
    ("agent", "visitor"),
    [
        ("audio.out", ["audio.in"]),
        ("audio.output", ["audio.input"]),
        ("agent_audio", ["user_audio"]),
        ("agentAudio", ["userAudio"]),
        ("AGENT_AUDIO", ["USER_AUDIO"]),
        ("agent.audio.out", ["user.audio.in", "user.audio.out", "agent.audio.in"]),
        ("media", ["media.in", "media.input"]),
        ("media_chunk", ["media_chunk_in", "media_chunk_input"]),
    ],
)
def test_the_visitors_audio_event_mirrors_the_agents(agent, visitor):
    assert mirrored(agent) == visitor


def test_an_agent_event_without_a_separator_takes_voicehubs_style():
    assert mirrored("media", style_of(["call_ended", "transcript_delta"])) == [
        "media_in",
        "media_input",
    ]


@pytest.mark.parametrize(
    ("message", "event"),
    [
        ("Unknown event text.message", "text.message"),
        ("unknown event 'audio.chunk'", "audio.chunk"),
        ('Unsupported event: "chat"', "chat"),
        ("event `audio.chunk` is not supported", "audio.chunk"),
        ("No handler for event text_message", "text_message"),
        ("text.message needs a non-empty text", None),
        ("internal error", None),
        (None, None),
    ],
)
def test_an_error_naming_an_unknown_event_is_read(message, event):
    assert unknown_event_named(message) == event


def test_text_names_follow_voicehubs_style_and_leave_out_what_was_refused():
    names = text_event_names(["text.message"], ["channel.joined", "transcript", "call.finished"])
    assert names[0] == "chat.message"
    assert "text.message" not in names
    assert "call.message" in names  # the refused name's last word after a first word heard
    assert text_event_names(["text_message"], ["call_ended"])[0] == "chat_message"
    assert text_event_names(["textMessage"], ["callEnded"])[0] == "chatMessage"


def test_text_names_sharing_a_word_with_voicehubs_events_come_first():
    names = text_event_names(["text.message"], ["message.created", "call.ended"])
    assert names[:2] == ["message", "message.send"]


AGENT = AudioDirection("audio.out", AudioShape.BINARY, "audio")
CONFIGURED = AudioDirection("audio.chunk", AudioShape.BINARY, "audio")


def test_after_an_unknown_event_the_mirror_of_the_agents_comes_next():
    tries = audio_in_tries([(CONFIGURED, "unknown")], AGENT, transport=Transport.SOCKETIO)
    assert tries[0] == AudioDirection("audio.in", AudioShape.BINARY, "audio")
    assert all(d.event != "audio.chunk" for d in tries)


def test_an_event_whose_payload_was_refused_is_tried_in_other_shapes():
    refused = AudioDirection("media.in", AudioShape.OBJECT, "chunk")
    tries = audio_in_tries(
        [(CONFIGURED, "unknown"), (refused, "refused")],
        AudioDirection("media", AudioShape.OBJECT, "chunk"),
        transport=Transport.SOCKETIO,
    )
    assert {d.event for d in tries} == {"media.in"}
    assert AudioDirection("media.in", AudioShape.BASE64, "audio") in tries
    assert refused not in tries


def test_a_plain_websocket_tries_binary_audio_once_and_never_as_an_object():
    """Its binary frames carry no event name, and JSON cannot carry binary."""
    tries = audio_in_tries([(CONFIGURED, "silent")], AGENT, transport=Transport.WEBSOCKET)
    assert not any(d.shape is AudioShape.BINARY for d in tries)
    assert not any(d.shape is AudioShape.OBJECT for d in tries)


def test_audio_tries_are_bounded():
    tries = audio_in_tries([(CONFIGURED, "silent")], AGENT, transport=Transport.SOCKETIO)
    assert len(tries) == MAX_AUDIO_TRIES - 1


def test_without_agent_audio_only_other_shapes_of_the_configured_event_are_left():
    tries = audio_in_tries([(CONFIGURED, "silent")], None, transport=Transport.SOCKETIO)
    assert {d.event for d in tries} == {"audio.chunk"}
    assert tries[0].shape is AudioShape.BASE64
