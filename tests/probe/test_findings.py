"""What a probe's recording says, read without any socket."""

from __future__ import annotations

import base64

import pytest

from webcall_widget.probe.findings import (
    ANSWERED,
    REFUSED,
    SILENT,
    UNKNOWN,
    Observation,
    Recorded,
    RejoinTry,
    TextTry,
    analyse,
    answer_to,
)
from webcall_widget.voicehub.profile import CallEnd, JoinConfirmation, Rejoin, UpstreamProfile


def observe(*records: Recorded, sent_text: str | None = None, **configured) -> Observation:
    return Observation(
        configured=configured,
        profile=UpstreamProfile(),
        records=list(records),
        sent_text=sent_text,
    )


def joined(t=0.0) -> Recorded:
    return Recorded(t, "in", "channel.joined", {"channels": ["audio", "text"]})


def audio_stream(event: str, payload, start: float, seconds: float, rate: int) -> list[Recorded]:
    size = int(rate * 0.02) * 2
    return [
        Recorded(start + index * 0.02, "in", event, payload(bytes(size)))
        for index in range(int(seconds / 0.02))
    ]


def test_base64_audio_in_a_field_of_another_event_at_24khz():
    chunks = audio_stream(
        "media", lambda pcm: {"audio": base64.b64encode(pcm).decode()}, 1.0, 2.0, 24000
    )
    result = analyse(observe(joined(), *chunks))
    assert result.changes == {
        "AUDIO_OUT_EVENT": "media",
        "AUDIO_OUT_FORMAT": "base64",
        "OUTPUT_SAMPLE_RATE": 24000,
    }
    assert any(
        f.startswith("agent audio arrived as base64 in field `audio` of event `media`")
        and f.endswith("~24000 Hz")
        for f in result.findings
    )


def test_the_visitor_is_the_role_that_echoed_what_was_typed():
    records = [
        joined(),
        Recorded(0.1, "in", "message", {"speaker": "bot", "content": "Hi"}),
        Recorded(1.0, "in", "message", {"speaker": "customer", "content": "hello"}),
        Recorded(1.2, "in", "message", {"speaker": "bot", "content": "Hey"}),
    ]
    result = analyse(observe(*records, sent_text="hello"))
    assert result.changes == {
        "EVENTS": {"created": "message"},
        "MESSAGE_FIELDS": {"role": "speaker", "text": "content"},
        "VISITOR_ROLES": ["customer"],
    }


def test_pieces_that_do_not_repeat_the_text_so_far_are_appended():
    pieces = ["You", " said", " hi"]
    records = [joined()] + [
        Recorded(
            0.1 * n, "in", "created", {"id": "m", "role": "agent", "text": t, "final": n == 2}
        )
        for n, t in enumerate(pieces)
    ]
    assert analyse(observe(*records)).changes == {"MESSAGE_UPDATES": "append"}


def test_a_join_only_acknowledged_suggests_ack():
    records = [Recorded(0.0, "ack", "channel.join", {"callId": "c", "channels": ["text"]})]
    assert analyse(observe(*records)).changes == {"JOIN_CONFIRMATION": "ack"}


def test_an_agent_that_hangs_up_by_closing_suggests_either():
    records = [
        joined(),
        Recorded(1.0, "in", "created", {"id": "1", "role": "agent", "text": "Bye"}),
        Recorded(1.1, "closed", "server disconnected the socket", {"by_upstream": True}),
    ]
    assert analyse(observe(*records)).changes == {"CALL_END": "either"}


def test_suggestions_keep_the_settings_the_probe_started_from():
    records = [Recorded(0.0, "ack", "channel.join", {"channels": ["text"]})]
    result = analyse(observe(*records, TRANSPORT="socketio", EVENTS={"leave": "bye"}))
    assert result.suggested == {
        "TRANSPORT": "socketio",
        "EVENTS": {"leave": "bye"},
        "JOIN_CONFIRMATION": "ack",
    }


def test_unused_events_and_errors_are_listed():
    records = [
        joined(),
        Recorded(0.2, "in", "metrics", {"latency": 3}),
        Recorded(0.3, "in", "exception", {"message": "bad audio"}),
    ]
    findings = analyse(observe(*records)).findings
    assert "error events: 'bad audio' x1" in findings
    assert "events the relay will not use: `metrics` x1" in findings


def closed_by_voicehub(t: float) -> Recorded:
    return Recorded(t, "closed", "server disconnected the socket", {"by_upstream": True})


def test_an_unknown_event_just_before_voicehub_closes_is_the_end_event():
    records = [
        joined(),
        Recorded(1.0, "in", "created", {"id": "1", "role": "agent", "text": "Bye"}),
        Recorded(1.2, "in", "session.over", {"why": "done"}),
        closed_by_voicehub(1.3),
    ]
    result = analyse(observe(*records))
    assert result.changes == {"EVENTS": {"call_ended": "session.over"}}
    assert "the agent ended the call with event `session.over`, then the socket closed" in (
        result.findings
    )


def test_a_call_that_never_ended_suggests_either_and_says_what_was_not_learnt():
    observation = observe(joined(), Recorded(1.0, "in", "created", {"text": "Hi"}))
    observation.left_at, observation.completed = 2.0, True
    result = analyse(observation)
    assert result.changes == {"CALL_END": "either"}
    assert "the call did not end by itself during the probe" in result.findings
    assert any(item.startswith("how VoiceHub ends a call") for item in result.unlearnt)


def test_calls_that_end_by_disconnecting_need_no_change_when_the_end_was_not_seen():
    observation = observe(joined(), CALL_END="disconnect")
    observation.profile = UpstreamProfile(call_end=CallEnd.DISCONNECT)
    observation.left_at, observation.completed = 2.0, True
    assert analyse(observation).changes == {}


def test_text_answered_under_another_name_sets_its_event():
    refusal = {"message": "Unknown event text.message"}
    records = [
        joined(),
        Recorded(1.1, "in", "error", refusal),
        Recorded(1.3, "in", "created", {"id": "2", "role": "agent", "text": "You said: hi"}),
    ]
    observation = observe(*records)
    observation.texts = [
        TextTry("text.message", 1.0, UNKNOWN),
        TextTry("chat.message", 1.2, ANSWERED),
    ]
    result = analyse(observation)
    assert result.changes == {"EVENTS": {"text_message": "chat.message"}}
    assert any(
        f.startswith("typed text was answered when sent as event `chat.message`")
        for f in (result.findings)
    )


def test_text_no_name_was_answered_under_is_left_to_the_reader():
    observation = observe(joined(), Recorded(1.1, "in", "error", {"message": "unknown event x"}))
    observation.texts = [TextTry("text.message", 1.0, UNKNOWN), TextTry("chat", 1.2, UNKNOWN)]
    result = analyse(observation)
    assert "EVENTS" not in result.changes
    assert any("EVENTS text_message" in item for item in result.unlearnt)


def test_the_error_naming_an_event_tells_unknown_from_refused():
    profile = UpstreamProfile()
    records = [Recorded(1.0, "in", "error", {"message": "unknown event 'audio.chunk'"})]
    assert answer_to(records, 0.5, "audio.chunk", profile) == UNKNOWN
    records = [Recorded(1.0, "in", "error", {"message": "media.in payload: no field"})]
    assert answer_to(records, 0.5, "media.in", profile) == REFUSED
    assert answer_to(records, 1.5, "media.in", profile) == SILENT
    records.append(Recorded(1.1, "in", "created", {"text": "heard you"}))
    assert answer_to(records, 0.5, "media.in", profile) == ANSWERED


def rejoined(outcome: str, answered: bool | None = None, detail: str = "") -> Observation:
    observation = observe(joined(), Recorded(2.0, "dropped", "dropped", None), joined(2.1))
    observation.rejoin = RejoinTry(2.0, outcome, answered, detail)
    return observation


def test_a_rejoin_the_agent_answered_after_works_as_is():
    result = analyse(rejoined("rejoined", answered=True))
    assert "REJOIN" not in result.changes
    assert any(f.startswith("rejoin works") for f in result.findings)


@pytest.mark.parametrize(
    ("outcome", "answered", "says"),
    [
        ("refused", None, "VoiceHub refused a new socket for the call under way (no)"),
        ("rejoined", False, "the agent did not answer on it"),
        ("no-socket", None, "did not open"),
        ("unanswered", None, "nothing confirmed"),
    ],
)
def test_a_rejoin_that_fails_suggests_never(outcome, answered, says):
    result = analyse(rejoined(outcome, answered, detail="no"))
    assert result.changes == {"REJOIN": "never"}
    assert any(says in f for f in result.findings)


def test_the_end_after_a_refused_rejoin_is_not_taken_for_the_agents():
    observation = rejoined("refused", detail="no")
    observation.records += [
        Recorded(2.2, "in", "call.ended", {"reason": "rejoin-refused"}),
        closed_by_voicehub(2.3),
    ]
    result = analyse(observation)
    assert result.changes == {"REJOIN": "never", "CALL_END": "either"}
    assert "the call ended when VoiceHub refused the rejoin, before the agent ended it" in (
        result.findings
    )


def test_a_rejoin_not_tried_is_said():
    observation = observe(joined())
    observation.rejoin_skipped = "--no-rejoin"
    result = analyse(observation)
    assert "rejoin not tried: --no-rejoin" in result.findings
    assert any("REJOIN" in item for item in result.unlearnt)


# the join


def test_a_join_confirmed_by_an_event_of_another_name_sets_that_name():
    result = analyse(observe(Recorded(0.1, "in", "room.join.ok", {"room": "c"})))
    assert result.changes == {"EVENTS": {"joined": "room.join.ok"}}
    assert "the join was confirmed by event 'room.join.ok'" in result.findings


def test_a_join_event_where_an_acknowledgement_was_expected_suggests_the_event():
    observation = observe(joined())
    observation.profile = UpstreamProfile(join_confirmation=JoinConfirmation.ACK)
    assert analyse(observation).changes == {"JOIN_CONFIRMATION": "event"}


def test_an_acknowledgement_where_one_was_expected_changes_nothing():
    observation = observe(Recorded(0.0, "ack", "channel.join", {"channels": ["text"]}))
    observation.profile = UpstreamProfile(join_confirmation=JoinConfirmation.ACK)
    result = analyse(observation)
    assert result.changes == {}
    assert "the join was confirmed by a Socket.IO acknowledgement" in result.findings


def test_events_without_any_confirmation_of_the_join_suggest_none():
    records = [Recorded(0.3, "in", "created", {"id": "1", "role": "agent", "text": "Hi"})]
    result = analyse(observe(*records))
    assert result.changes == {"JOIN_CONFIRMATION": "none"}
    assert any(
        f.startswith("nothing confirmed the join, but events came") for f in result.findings
    )


# what came


def test_audio_at_no_common_rate_is_said_to_come_in_bursts_and_left_as_set():
    chunks = audio_stream("audio.chunk", lambda pcm: pcm, 1.0, 2.0, 37000)
    result = analyse(observe(joined(), *chunks))
    assert "OUTPUT_SAMPLE_RATE" not in result.changes
    (audio,) = [f for f in result.findings if f.startswith("agent audio arrived")]
    assert audio.endswith(
        "2.3x real time at 16000 Hz: it may come in bursts; listen to it to tell the rate"
    )


def test_messages_one_object_down_are_read_there():
    records = [
        joined(),
        Recorded(0.5, "in", "created", {"message": {"speaker": "agent", "body": "Hi"}}),
        Recorded(0.9, "in", "created", {"message": {"speaker": "agent", "body": "there"}}),
    ]
    result = analyse(observe(*records))
    assert result.changes == {
        "MESSAGE_FIELDS": {"role": "message.speaker", "text": "message.body"}
    }


def test_an_event_whose_payload_is_a_list_carries_neither_audio_nor_messages():
    result = analyse(observe(joined(), Recorded(0.5, "in", "stats", [1, 2, 3])))
    assert result.changes == {}
    assert "events the relay will not use: `stats` x1" in result.findings
    assert any(f.startswith("no agent audio arrived") for f in result.findings)


# the end


def test_a_close_by_voicehub_where_either_end_is_expected_changes_nothing():
    observation = observe(joined(), closed_by_voicehub(1.0))
    observation.profile = UpstreamProfile(call_end=CallEnd.EITHER)
    result = analyse(observation)
    assert result.changes == {}
    assert "the agent ended the call by closing the socket, without an end event" in (
        result.findings
    )


def test_a_socket_that_failed_under_the_probe_is_said_to_have_failed():
    records = [joined(), Recorded(1.0, "closed", "transport error", {"by_upstream": False})]
    result = analyse(observe(*records))
    assert "the socket failed: transport error" in result.findings
    assert "CALL_END" not in result.changes


# joining again


def test_a_working_rejoin_where_never_was_set_suggests_auto():
    observation = rejoined("rejoined", answered=None)
    observation.profile = UpstreamProfile(rejoin=Rejoin.NEVER)
    result = analyse(observation)
    assert result.changes == {"REJOIN": "auto"}
    assert any(
        f.endswith("the agent kept the call (not asked to answer)") for f in result.findings
    )


def test_a_refused_rejoin_where_never_was_set_changes_nothing():
    observation = rejoined("refused", detail="no")
    observation.profile = UpstreamProfile(rejoin=Rejoin.NEVER)
    assert "REJOIN" not in analyse(observation).changes
