"""What a probe's recording says, read without any socket."""

from __future__ import annotations

import base64

from webcall_widget.probe.findings import Observation, Recorded, analyse
from webcall_widget.voicehub.profile import UpstreamProfile


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
