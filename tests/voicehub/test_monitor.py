"""What a session does with what it does not understand."""

from __future__ import annotations

import logging

import pytest

from tests.clocks import HandClock
from webcall_widget.voicehub.events import BadPayload, Unknown, UpstreamError
from webcall_widget.voicehub.monitor import ERROR_INTERVAL, Monitor, UpstreamReport


@pytest.fixture
def clock():
    return HandClock()


@pytest.fixture
def monitor(clock):
    return Monitor(
        UpstreamReport(),
        label="vh-1",
        output_rate=16000,
        clock=clock,
        redact=lambda text: text.replace("s3cret-key", "[redacted]"),
        secrets=("s3cret-key",),
    )


def test_an_upstream_error_passes_at_most_once_per_interval(monitor, clock):
    error = UpstreamError("boom")
    assert [monitor.error_allowed(error) for _ in range(5)] == [True] + [False] * 4
    clock.now += ERROR_INTERVAL
    assert monitor.error_allowed(error)
    assert monitor.report.errors_held_back == 4


def test_unknown_events_are_counted_by_name(monitor):
    for _ in range(3):
        monitor.unknown(Unknown("metrics", {}))
    monitor.unknown(Unknown("debug", None))
    assert monitor.report.unknown_events == 4
    assert monitor.report.notes() == "events the relay does not use: metrics (3), debug (1)"


def test_logging_stops_after_a_few_lines_then_resumes_a_minute_later(monitor, clock, caplog):
    with caplog.at_level(logging.WARNING, logger="webcall_widget.voicehub"):
        for _ in range(10):
            monitor.unknown(Unknown("metrics", {"a": 1}))
        clock.now += 61
        monitor.unknown(Unknown("metrics", {"a": 1}))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4
    assert "7 similar line(s) not logged" in lines[-1]


def test_log_lines_show_the_shape_without_secrets(monitor, caplog):
    with caplog.at_level(logging.WARNING, logger="webcall_widget.voicehub"):
        monitor.unknown(Unknown("hello", {"token": "abc", "text": "key s3cret-key here"}))
        monitor.bad(BadPayload("created", "no text", {"content": "s3cret-key"}))
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "{token: [redacted], text: 'key [redacted] here'}" in text
    assert "s3cret-key" not in text


def test_a_wrong_output_rate_is_noted_once(monitor, clock, caplog):
    with caplog.at_level(logging.WARNING, logger="webcall_widget.voicehub"):
        for _ in range(200):  # 4 s of 24 kHz, paced
            clock.now += 0.02
            monitor.audio(960)
    assert len(monitor.report.findings) == 1
    assert monitor.report.findings[0].startswith("output sample rate looks like 24000 Hz")
    assert len(caplog.records) == 1


def test_notes_say_how_many_errors_were_held_back():
    report = UpstreamReport(errors_held_back=12, bad_payloads=2)
    assert report.notes().splitlines() == [
        "2 event(s) with a payload the relay could not read",
        "12 upstream error event(s) not passed on to the visitor (at most one every 5 s)",
    ]
