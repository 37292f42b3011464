"""What relay processes say to each other about a call: each visitor message reads back as
it was sent, and what does not read as one is dropped, never raised."""

from __future__ import annotations

import logging

import pytest

from webcall_widget.relay import messages, protocol
from webcall_widget.relay.protocol import CloseCode, ProtocolError

SENT = [
    messages.Frame(protocol.Text("hello", "w1")),
    messages.Frame(protocol.Text("no id")),
    messages.Frame(protocol.AudioIn(b"\x01\x00" * 320)),
    messages.Frame(protocol.End()),
    messages.Dropped(640),
]


@pytest.mark.parametrize("message", SENT, ids=lambda m: type(m).__name__)
def test_a_visitor_message_reads_back_as_it_was_sent(message):
    fields = messages.visitor_message("browser-1", message)
    assert (fields["type"], fields["browser"]) == (messages.FRAME, "browser-1")
    assert messages.read_visitor_message(fields) == message


def test_a_refusal_with_a_code_this_version_does_not_know_is_told_as_a_malformed_frame(caplog):
    """A process of a newer version (a rolling deploy) may refuse a frame with a code this
    one has no words for: the visitor is still told, and the close code is kept."""
    refused = messages.Refused(
        ProtocolError("from_the_future", "", CloseCode.MALFORMED_FRAME), "x"
    )
    read = messages.read_visitor_message(messages.visitor_message("b", refused))
    assert isinstance(read, messages.Refused)
    assert (read.error.code, read.error.close_code, read.reason) == (
        "malformed_frame",
        CloseCode.MALFORMED_FRAME,
        "x",
    )
    assert "unknown code: 'from_the_future'" in caplog.text


def test_a_refused_frame_keeps_its_code_close_code_and_reason():
    refused = messages.Refused(
        ProtocolError("rate_limited", "too fast", CloseCode.RATE_LIMITED), "frame-rate-limit"
    )
    read = messages.read_visitor_message(messages.visitor_message("b", refused))
    assert isinstance(read, messages.Refused)
    assert (read.error.code, read.error.close_code, read.reason) == (
        "rate_limited",
        CloseCode.RATE_LIMITED,
        "frame-rate-limit",
    )


def test_a_refusal_that_leaves_the_socket_open_has_no_close_code():
    refused = messages.Refused(ProtocolError("text_not_allowed", "voice only"), None)
    read = messages.read_visitor_message(messages.visitor_message("b", refused))
    assert isinstance(read, messages.Refused)
    assert (read.error.close_code, read.reason) == (None, None)


def test_a_ping_is_answered_where_it_arrives_never_forwarded():
    with pytest.raises(TypeError):
        messages.visitor_message("b", messages.Frame(protocol.Ping(1)))


@pytest.mark.parametrize(
    "fields",
    [
        {"type": messages.FRAME, "browser": "b"},
        {"type": messages.FRAME, "browser": "b", "text": "not a dict"},
        {"type": messages.FRAME, "browser": "b", "text": {"id": None}},
        {"type": messages.FRAME, "browser": "b", "dropped": -5},
        {"type": messages.FRAME, "browser": "b", "dropped": "640"},
        {"type": messages.FRAME, "browser": "b", "refused": {"code": "x", "close": 1}},
        {"type": messages.FRAME, "browser": "b", "refused": {"code": "x"}},
        {"type": messages.FRAME, "browser": "b", "end": "yes"},
    ],
)
def test_a_message_another_version_might_send_is_dropped_with_a_log_line(fields, caplog):
    with caplog.at_level(logging.WARNING, logger="webcall_widget.relay"):
        assert messages.read_visitor_message(fields) is None
    assert "could not be read" in caplog.text


def test_a_calls_group_is_the_same_for_its_id_as_text_or_uuid():
    import uuid

    call_id = uuid.uuid4()
    assert messages.call_group(call_id) == messages.call_group(str(call_id))
