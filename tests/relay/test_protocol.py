from __future__ import annotations

import json

import pytest

from webcall_widget.relay import protocol
from webcall_widget.relay.protocol import CloseCode, ProtocolError
from webcall_widget.voicehub.events import AudioFormat, Mode


def parse(text=None, data=None, *, mode=Mode.TEXT_AUDIO, max_text=100, max_frame=1000):
    return protocol.parse(
        text, data, mode=mode, max_text_length=max_text, max_frame_bytes=max_frame
    )


def test_text_frame_is_parsed_and_trimmed():
    assert parse('{"type":"text","text":"  hi  "}') == protocol.Text("hi")


def test_end_frame():
    assert parse('{"type":"end"}') == protocol.End()


def test_ping_frame_keeps_its_number():
    assert parse('{"type":"ping","t":12.5}') == protocol.Ping(12.5)


def test_ping_without_number_is_fine():
    assert parse('{"type":"ping"}') == protocol.Ping(None)


def test_binary_frame_is_audio():
    assert parse(data=b"\x00\x01" * 10) == protocol.AudioIn(b"\x00\x01" * 10)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '"text"',
        "{}",
        '{"type": 3}',
        '{"type":"shout"}',
        '{"type":"text"}',
        '{"type":"text","text":5}',
        '{"type":"ping","t":"soon"}',
        '{"type":"ping","t":true}',
        '{"type":"ping","t":NaN}',
    ],
)
def test_malformed_frames_close_with_4400(text):
    with pytest.raises(ProtocolError) as caught:
        parse(text)
    assert caught.value.close_code is CloseCode.MALFORMED_FRAME
    assert caught.value.code == "malformed_frame"


def test_empty_frame_is_malformed():
    with pytest.raises(ProtocolError) as caught:
        parse()
    assert caught.value.close_code is CloseCode.MALFORMED_FRAME


def test_audio_with_half_a_sample_is_malformed():
    with pytest.raises(ProtocolError) as caught:
        parse(data=b"\x00\x01\x02")
    assert caught.value.close_code is CloseCode.MALFORMED_FRAME


def test_oversized_binary_frame_closes_with_4413():
    with pytest.raises(ProtocolError) as caught:
        parse(data=b"\x00" * 1002)
    assert caught.value.close_code is CloseCode.FRAME_TOO_LARGE


def test_oversized_text_frame_closes_with_4413():
    with pytest.raises(ProtocolError) as caught:
        parse(json.dumps({"type": "text", "text": "x" * 2000}))
    assert caught.value.close_code is CloseCode.FRAME_TOO_LARGE


def test_frame_size_counts_utf8_bytes_not_characters():
    text = json.dumps({"type": "text", "text": "€" * 400}, ensure_ascii=False)
    assert len(text) < 1000 < len(text.encode())
    with pytest.raises(ProtocolError) as caught:
        parse(text, max_text=1000)
    assert caught.value.close_code is CloseCode.FRAME_TOO_LARGE


def test_too_long_message_is_refused_without_closing():
    with pytest.raises(ProtocolError) as caught:
        parse(json.dumps({"type": "text", "text": "x" * 101}))
    assert caught.value.code == "message_too_long"
    assert caught.value.close_code is None


def test_blank_message_is_refused_without_closing():
    with pytest.raises(ProtocolError) as caught:
        parse('{"type":"text","text":"   "}')
    assert caught.value.code == "empty_message"
    assert caught.value.close_code is None


def test_text_in_a_voice_only_call_is_refused_without_closing():
    with pytest.raises(ProtocolError) as caught:
        parse('{"type":"text","text":"hi"}', mode=Mode.WEB_AUDIO)
    assert caught.value.code == "text_not_allowed"
    assert caught.value.close_code is None


def test_audio_in_a_text_call_is_refused_without_closing():
    with pytest.raises(ProtocolError) as caught:
        parse(data=b"\x00\x00", mode=Mode.TEXT)
    assert caught.value.code == "audio_not_allowed"
    assert caught.value.close_code is None


def test_ready_frame_reports_mode_and_audio_format():
    frame = json.loads(protocol.ready_frame("c1", Mode.TEXT_AUDIO, AudioFormat(16000, 24000)))
    assert frame == {
        "type": "ready",
        "version": 1,
        "call": "c1",
        "mode": "TextAudio",
        "audio": {"format": "pcm16le", "inputRate": 16000, "outputRate": 24000, "frameMs": 20},
        "resume": None,
        "resumed": False,
    }


def test_ready_frame_of_a_text_call_has_no_audio():
    assert json.loads(protocol.ready_frame("c1", Mode.TEXT, AudioFormat()))["audio"] is None


def test_ready_frame_carries_the_resume_token_and_grace_period():
    frame = json.loads(
        protocol.ready_frame("c1", Mode.TEXT, AudioFormat(), resume_token="t", resume_seconds=20)
    )
    assert frame["resume"] == {"token": "t", "seconds": 20}


def test_text_frame_may_name_its_message():
    assert parse('{"type":"text","text":"hi","id":"w-1_a"}') == protocol.Text("hi", "w-1_a")


def test_text_frame_with_a_null_message_id_has_none():
    assert parse('{"type":"text","text":"hi","id":null}') == protocol.Text("hi")


@pytest.mark.parametrize("message_id", ['""', "5", '"has space"', '"' + "x" * 65 + '"'])
def test_text_frame_with_a_bad_message_id_is_malformed(message_id):
    with pytest.raises(ProtocolError) as caught:
        parse('{"type":"text","text":"hi","id":' + message_id + "}")
    assert caught.value.close_code is CloseCode.MALFORMED_FRAME


def test_message_frame_keeps_text_as_data():
    frame = protocol.message_frame("m1", "agent", "<b>hi</b> ☃", final=False)
    assert json.loads(frame) == {
        "type": "message",
        "id": "m1",
        "role": "agent",
        "text": "<b>hi</b> ☃",
        "final": False,
    }


def test_server_frames_are_json_with_a_type():
    for frame in (
        protocol.error_frame("x", "y"),
        protocol.ended_frame("visitor-ended"),
        protocol.pong_frame(3),
        protocol.INTERRUPT_FRAME,
    ):
        assert isinstance(json.loads(frame)["type"], str)


def test_our_close_codes_are_in_the_private_range():
    standard = {CloseCode.NORMAL, CloseCode.RESTARTING}
    assert all(4000 <= code < 5000 for code in set(CloseCode) - standard)


@pytest.mark.parametrize("opening", ["[", '{"a":', '{"type":"text","text":['])
def test_frame_nested_deeper_than_python_can_parse_is_malformed(opening):
    text = opening * 5000  # well under the default 16 KiB frame limit
    with pytest.raises(ProtocolError) as caught:
        parse(text, max_frame=len(text))
    assert caught.value.close_code is CloseCode.MALFORMED_FRAME
    assert caught.value.code == "malformed_frame"
