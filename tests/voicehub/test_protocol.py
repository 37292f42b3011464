"""The settings-driven protocol: what VoiceHub's events mean under each profile."""

from __future__ import annotations

import dataclasses

import pytest

from webcall_widget.voicehub.events import (
    Audio,
    AudioClear,
    BadPayload,
    CallEnded,
    Joined,
    Message,
    Role,
    Unknown,
    UpstreamError,
)
from webcall_widget.voicehub.profile import (
    AudioDirection,
    AudioShape,
    CallEnd,
    MessageFields,
    MessageUpdates,
    UpstreamProfile,
)
from webcall_widget.voicehub.protocol import (
    SettingsProtocol,
    UpstreamProtocol,
    load_protocol,
    protocol_class,
)


def protocol(**changes) -> SettingsProtocol:
    return SettingsProtocol(dataclasses.replace(UpstreamProfile(), **changes))


def created(p, **payload):
    return p.decode("created", payload)


def test_messages_are_read_from_the_default_fields():
    message = created(protocol(), id="m1", role="agent", text="Hi", final=False)
    assert message == Message(id="m1", role=Role.AGENT, text="Hi", final=False)


def test_message_fields_can_be_renamed_and_nested():
    p = protocol(
        message_fields=MessageFields(
            id="messageId", role="speaker", text="message.content", final="isFinal"
        ),
        visitor_roles=("customer",),
    )
    message = created(p, messageId=7, speaker="customer", message={"content": "yo"}, isFinal=True)
    assert message == Message(id="7", role=Role.USER, text="yo", final=True)


@pytest.mark.parametrize(
    ("role", "expected"),
    [("user", Role.USER), ("caller", Role.USER), ("bot", Role.AGENT), (None, Role.AGENT)],
)
def test_visitor_roles_decide_who_spoke(role, expected):
    p = protocol(visitor_roles=("user", "caller"))
    assert created(p, id="1", role=role, text="t").role is expected


def test_a_message_without_a_final_flag_is_final():
    assert created(protocol(), id="1", role="agent", text="t").final is True


def test_messages_without_ids_get_one_per_turn():
    p = protocol()
    first = [created(p, role="agent", text=t, final=f) for t, f in [("a", False), ("a b", True)]]
    second = created(p, role="agent", text="c", final=True)
    assert first[0].id == first[1].id
    assert second.id != first[0].id


def test_turns_without_ids_are_kept_apart_per_role():
    p = protocol()
    agent_partial = created(p, role="agent", text="Hel", final=False)
    visitor = created(p, role="user", text="wait", final=True)
    agent_final = created(p, role="agent", text="Hello", final=True)
    assert agent_partial.id == agent_final.id != visitor.id


def test_appended_pieces_are_put_together():
    p = protocol(message_updates=MessageUpdates.APPEND)
    pieces = [
        created(p, id="m", role="agent", text=t, final=f)
        for t, f in [("You", False), (" said", False), (": hi", True)]
    ]
    assert [m.text for m in pieces] == ["You", "You said", "You said: hi"]
    assert created(p, id="m", role="agent", text="new", final=True).text == "new"


def test_replaced_text_is_taken_as_it_is():
    p = protocol()
    assert created(p, id="m", role="agent", text="You", final=False).text == "You"
    assert created(p, id="m", role="agent", text="You said", final=True).text == "You said"


def test_a_message_without_text_is_a_bad_payload_naming_the_setting():
    event = created(protocol(), id="1", role="agent", content="hi")
    assert isinstance(event, BadPayload)
    assert "no text in field 'text' (UPSTREAM.MESSAGE_FIELDS)" in event.problem


def test_agent_audio_follows_its_direction():
    down = AudioDirection("media", AudioShape.OBJECT, "chunk")
    p = protocol(audio_out=down)
    assert p.decode("media", {"chunk": b"\x01\x02"}) == Audio(b"\x01\x02")
    assert p.decode("audio.chunk", b"\x01\x02") == Unknown("audio.chunk", b"\x01\x02")


def test_agent_audio_in_another_shape_is_a_bad_payload_naming_the_settings():
    event = protocol().decode("audio.chunk", {"audio": "AAAA"})
    assert isinstance(event, BadPayload)
    assert "UPSTREAM.AUDIO_OUT_FORMAT" in event.problem


def test_visitor_audio_goes_out_in_its_direction():
    up = AudioDirection("audio.input", AudioShape.BASE64, "payload")
    assert protocol(audio_in=up).audio("c1", b"\x00\x01") == (
        "audio.input",
        {"callId": "c1", "payload": "AAE="},
    )


def test_the_end_event_ends_the_call_unless_calls_end_by_disconnect():
    assert protocol().decode("call.ended", {"reason": "done"}) == CallEnded("done")
    ignored = protocol(call_end=CallEnd.DISCONNECT).decode("call.ended", {})
    assert isinstance(ignored, Unknown)
    assert protocol(call_end=CallEnd.EITHER).decode("call.ended", {}) == CallEnded("ended")


def test_errors_interruptions_and_unknown_events():
    p = protocol()
    assert p.decode("exception", {"message": "boom"}) == UpstreamError("boom")
    assert p.decode("error", "plain") == UpstreamError("plain")
    assert p.decode("audio.clear", None) == AudioClear()
    assert p.decode("metrics", {"a": 1}) == Unknown("metrics", {"a": 1})


@pytest.mark.parametrize(
    ("ack", "expected"),
    [
        ({"callId": "c", "channels": ["text"]}, Joined(("text",))),
        (None, Joined(("audio", "text"))),
        ({"ok": True}, Joined(("audio", "text"))),
        ({"error": "no such call"}, UpstreamError("no such call")),
        ({"success": False, "message": "denied"}, UpstreamError("denied")),
    ],
)
def test_a_join_acknowledgement_confirms_or_refuses(ack, expected):
    assert protocol().join_acknowledged(ack, ("audio", "text")) == expected


class Custom(SettingsProtocol):
    def decode(self, name, data):
        if name == "transcript.delta":
            return self.message(data["item"], Role.AGENT, data["delta"], False)
        return super().decode(name, data)


def test_a_protocol_class_named_in_the_profile_is_used():
    profile = dataclasses.replace(UpstreamProfile(), protocol=f"{__name__}.Custom")
    loaded = load_protocol(profile)
    assert isinstance(loaded, Custom)
    assert loaded.decode("transcript.delta", {"item": "i", "delta": "x"}) == Message(
        "i", Role.AGENT, "x", False
    )


def test_a_protocol_class_must_be_an_upstream_protocol():
    with pytest.raises(TypeError, match="not a subclass of UpstreamProtocol"):
        protocol_class("collections.OrderedDict")
    assert issubclass(protocol_class(f"{__name__}.Custom"), UpstreamProtocol)
