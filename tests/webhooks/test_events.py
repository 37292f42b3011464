"""Reading a webhook body: what identifies an event, its timestamp, its recordings."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest

from webcall_widget.voicehub.statuses import VoiceHubStatus
from webcall_widget.webhooks.errors import BadEvent
from webcall_widget.webhooks.events import (
    parse_body,
    parse_timestamp,
    recordings_of,
    status_of,
)


def parse(payload):
    return parse_body(json.dumps(payload).encode())


def test_an_event_is_known_by_its_event_id():
    event = parse({"eventType": "CallStatusChanged", "eventId": "ev-1", "callId": "c-1"})
    assert (event.key, event.event_type, event.call_id) == ("ev-1", "CallStatusChanged", "c-1")


def test_a_numeric_event_id_is_read_as_text():
    assert parse({"eventType": "CallStatusChanged", "eventId": 42}).key == "42"


def test_an_analysis_event_without_event_id_is_known_by_its_analysis_id():
    event = parse({"eventType": "AnalysisResultReady", "analysisId": "an-7"})
    assert event.key == "analysis:an-7"


def test_an_event_with_no_id_at_all_is_known_by_a_hash_of_its_body():
    body = b'{"eventType": "Something"}'
    assert parse_body(body).key == "sha256:" + hashlib.sha256(body).hexdigest()


def test_an_event_id_too_long_to_store_is_replaced_by_the_hash():
    assert parse({"eventId": "x" * 201}).key.startswith("sha256:")


def test_an_event_without_a_type_has_an_empty_type():
    assert parse({"eventId": "e"}).event_type == ""


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'"text"',
        b"",
        b"[" * 5000,
        # Python's parser takes these; no database's JSON column does.
        b'{"eventId": "e", "score": NaN}',
        b'{"eventId": "e", "score": -Infinity}',
        b'{"eventId": "e", "score": 1e999}',
    ],
)
def test_a_body_that_is_not_a_json_object_is_a_bad_event(body):
    with pytest.raises(BadEvent):
        parse_body(body)


@pytest.mark.parametrize(
    "value",
    [
        "2026-05-01T10:00:00.000Z",
        "2026-05-01T10:00:00+00:00",
        "2026-05-01T12:00:00+02:00",
        "2026-05-01T10:00:00",
        1777629600,
        1777629600000,
        1777629600.0,
    ],
)
def test_timestamps_in_iso_8601_or_unix_time_are_read(value):
    assert parse_timestamp(value) == dt.datetime(2026, 5, 1, 10, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("value", [None, "", "yesterday", True, -5, float("nan"), [], "9" * 100])
def test_a_timestamp_that_cannot_be_read_is_none(value):
    assert parse_timestamp(value) is None


def test_a_status_is_read_as_sent_even_one_not_documented():
    assert status_of({"status": "in-progress"}) == VoiceHubStatus.IN_PROGRESS
    assert status_of({"status": "ringing"}) == "ringing"
    assert status_of({"status": 3}) == ""


def test_final_statuses_are_the_ones_that_end_a_call():
    assert {s.value for s in VoiceHubStatus if s.is_final} == {
        "completed",
        "failed",
        "cancelled",
        "unanswered",
        "busy",
    }


def test_recordings_keep_only_non_empty_strings():
    assert recordings_of({"recordings": ["a.wav", 3, None, " ", "b.wav"]}) == ["a.wav", "b.wav"]
    assert recordings_of({"recordings": "one.wav"}) == ["one.wav"]
    assert recordings_of({}) == []
