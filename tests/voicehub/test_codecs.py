"""Payload shapes: audio each way, dotted fields, and safe descriptions of payloads."""

from __future__ import annotations

import base64
import re

import pytest

from webcall_widget.voicehub.codecs import (
    BadAudio,
    decode_audio,
    describe,
    encode_audio,
    pick,
    put,
    summarise,
)
from webcall_widget.voicehub.profile import AudioDirection, AudioShape

PCM = bytes(range(256)) * 5  # 1280 bytes: 40 ms at 16 kHz
BINARY = AudioDirection("audio.chunk")
OBJECT = AudioDirection("audio.chunk", AudioShape.OBJECT, "audio")
BASE64 = AudioDirection("media", AudioShape.BASE64, "payload")


@pytest.mark.parametrize("direction", [BINARY, OBJECT, BASE64])
def test_audio_round_trips_in_every_shape(direction):
    assert decode_audio(direction, encode_audio(direction, "c1", PCM)) == PCM


def test_object_audio_carries_the_call_id_and_the_bytes():
    assert encode_audio(OBJECT, "c1", PCM) == {"callId": "c1", "audio": PCM}


def test_base64_audio_is_a_string_in_the_named_field():
    assert encode_audio(BASE64, "c1", PCM) == {
        "callId": "c1",
        "payload": base64.b64encode(PCM).decode(),
    }


def test_an_object_field_may_hold_base64_and_a_base64_field_binary():
    assert decode_audio(OBJECT, {"audio": base64.b64encode(PCM).decode()}) == PCM
    assert decode_audio(BASE64, {"payload": PCM}) == PCM


def test_a_bare_base64_string_is_read_where_base64_is_expected():
    assert decode_audio(BASE64, base64.b64encode(PCM).decode()) == PCM


@pytest.mark.parametrize(
    ("direction", "data", "says"),
    [
        (
            BINARY,
            {"callId": "c", "audio": PCM},
            "expected binary audio; got {callId: 'c', audio: binary(1280)}",
        ),
        (OBJECT, PCM, "got bare binary"),
        (OBJECT, {"callId": "c"}, "got {callId: 'c'}"),
        (BASE64, {"payload": "not base64!"}, "field 'payload' is a string but not base64"),
    ],
)
def test_audio_in_another_shape_says_what_it_was(direction, data, says):
    with pytest.raises(BadAudio, match=re.escape(says)):
        decode_audio(direction, data)


def test_dotted_fields_reach_into_objects():
    data: dict = {}
    put(data, "message.content", "hi")
    assert data == {"message": {"content": "hi"}}
    assert pick(data, "message.content") == "hi"
    assert pick(data, "message.missing") is None
    assert pick({"a.b": 1}, "a.b") == 1  # a key with a dot, as it is


def test_summaries_cut_long_strings_and_show_binary_as_a_length():
    summary = summarise({"text": "x" * 300, "audio": PCM}, max_string=10)
    assert summary == {"text": "xxxxxxxxxx…(300 chars)", "audio": "<binary 1280 bytes>"}


def test_summaries_recognise_base64_audio():
    assert summarise({"a": base64.b64encode(PCM).decode()}) == {"a": "<base64 1280 bytes>"}


def test_summaries_hide_secret_looking_fields_and_known_secrets():
    summary = summarise(
        {"apiKey": "k-123456", "auth": {"token": "t"}, "note": "uses k-123456 now"},
        secrets=["k-123456"],
    )
    assert summary == {
        "apiKey": "[redacted]",
        "auth": {"token": "[redacted]"},
        "note": "uses [redacted] now",
    }


def test_descriptions_give_the_shape_in_one_line():
    assert describe({"callId": "c", "audio": PCM, "n": 3, "ok": True, "x": None}) == (
        "{callId: 'c', audio: binary(1280), n: int, ok: bool, x: null}"
    )


def test_picking_from_something_not_an_object_finds_nothing():
    assert pick("a string", "text") is None
    assert pick([{"text": "hi"}], "text") is None


def test_url_safe_base64_is_not_taken_for_audio():
    urlsafe = base64.urlsafe_b64encode(bytes([251, 255]) * 150).decode()
    assert "-" in urlsafe or "_" in urlsafe
    assert summarise({"a": urlsafe})["a"].startswith(urlsafe[:20])


def test_summaries_trim_big_objects_and_lists():
    summary = summarise(
        {"many": {str(n): n for n in range(5)}, "list": list(range(5))}, max_items=3
    )
    assert summary == {
        "many": {"0": 0, "1": 1, "2": 2, "…": "2 more"},
        "list": [0, 1, 2, "… 2 more"],
    }


def test_summaries_stop_at_their_depth():
    assert summarise({"a": {"b": {"c": 1}}}, depth=2) == {"a": {"b": "<…>"}}
    assert describe({"a": {"b": {"c": {"d": 1}}}}) == "{a: {b: {c: …}}}"


def test_values_json_does_not_know_are_named_by_their_type():
    assert summarise({"when": object(), "set": {1}}) == {"when": "<object>", "set": "<set>"}
    assert describe([PCM, "hi"]) == "[binary(1280), 'hi']"
