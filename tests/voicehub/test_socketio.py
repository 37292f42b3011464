from __future__ import annotations

import json

import pytest

from webcall_widget.voicehub import socketio


def decode(*frames):
    decoder = socketio.Decoder()
    packets = []
    for frame in frames:
        packet = (
            decoder.receive_text(frame)
            if isinstance(frame, str)
            else decoder.receive_binary(frame)
        )
        if packet is not None:
            packets.append(packet)
    return packets


def test_open_packet_gives_timings_in_seconds():
    (opened,) = decode('0{"sid":"abc","pingInterval":25000,"pingTimeout":20000,"maxPayload":9}')
    assert opened == socketio.Open("abc", 25.0, 20.0, 9)


def test_connect_ack():
    assert decode('40{"sid":"x"}') == [socketio.Connected({"sid": "x"})]


def test_connect_error_carries_the_servers_message():
    assert decode('44{"message":"Not authorized"}') == [socketio.ConnectError("Not authorized")]


def test_ping_is_surfaced_with_its_payload():
    assert decode("2", "2probe") == [socketio.Ping(""), socketio.Ping("probe")]


def test_event_with_data():
    assert decode('42["created",{"text":"hi"}]') == [socketio.Event("created", {"text": "hi"})]


def test_event_without_data():
    assert decode('42["audio.clear"]') == [socketio.Event("audio.clear", None)]


def test_event_with_ack_id_is_still_an_event():
    assert decode('4212["x",1]') == [socketio.Event("x", 1)]


def test_event_in_default_namespace_written_out():
    assert decode('42/,["x",1]') == [socketio.Event("x", 1)]


def test_event_in_another_namespace_is_ignored():
    assert decode('42/admin,["x",1]') == []


def test_binary_event_waits_for_its_attachment():
    header = '451-["audio.chunk",{"_placeholder":true,"num":0}]'
    assert decode(header, b"\x01\x02") == [socketio.Event("audio.chunk", b"\x01\x02")]


def test_binary_event_with_two_attachments_nested():
    header = '452-["e",{"a":{"_placeholder":true,"num":1},"b":[{"_placeholder":true,"num":0}]}]'
    assert decode(header, b"A", b"B") == [socketio.Event("e", {"a": b"B", "b": [b"A"]})]


def test_encoded_event_round_trips():
    frame = socketio.encode_event("text.message", {"callId": "c", "text": "é"})
    assert decode(frame) == [socketio.Event("text.message", {"callId": "c", "text": "é"})]


def test_binary_header_round_trips_with_its_attachment():
    header = socketio.binary_event_header("audio.chunk")
    assert json.loads(header[4:])[0] == "audio.chunk"
    assert decode(header, b"pcm") == [socketio.Event("audio.chunk", b"pcm")]


def test_engineio_close_and_socketio_disconnect_are_closes():
    assert all(isinstance(p, socketio.Closed) for p in decode("1", "41"))


def test_pong_and_noop_are_ignored():
    assert decode("3", "6") == []


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "9",
        "4",
        "49",
        "42not json",
        "42{}",
        "42[]",
        "42[5]",
        "45x-[]",
        '0{"pingInterval":1}',
        '0{"sid":"a","pingInterval":"soon"}',
    ],
)
def test_protocol_violations_raise(frame):
    with pytest.raises(socketio.ProtocolViolation):
        decode(frame)


def test_binary_frame_without_header_is_a_violation():
    with pytest.raises(socketio.ProtocolViolation):
        decode(b"\x00")


def test_text_frame_while_an_attachment_is_due_is_a_violation():
    with pytest.raises(socketio.ProtocolViolation):
        decode('451-["a",{"_placeholder":true,"num":0}]', '42["b"]')


def test_placeholder_pointing_past_the_attachments_is_a_violation():
    with pytest.raises(socketio.ProtocolViolation):
        decode('451-["a",{"_placeholder":true,"num":3}]', b"x")


# namespaces, acknowledgements, attachments anywhere


def test_an_acknowledgement_carries_its_id_and_first_argument():
    assert decode('43/,12[{"ok":true}]') == [socketio.Ack(12, {"ok": True})]
    assert decode("437[]") == [socketio.Ack(7, None)]


def test_a_binary_acknowledgement_waits_for_its_attachment():
    header = '461-3[{"pcm":{"_placeholder":true,"num":0}}]'
    assert decode(header, b"\x01") == [socketio.Ack(3, {"pcm": b"\x01"})]


def test_an_acknowledgement_without_an_id_is_a_violation():
    with pytest.raises(socketio.ProtocolViolation):
        decode("43[]")


def test_a_decoder_for_a_namespace_takes_only_its_packets():
    decoder = socketio.Decoder("/webcall/1")
    assert decoder.receive_text('42/webcall/1,["x",1]') == socketio.Event("x", 1)
    assert decoder.receive_text('42["x",1]') is None
    assert decoder.receive_text('40/webcall/1,{"sid":"s"}') == socketio.Connected({"sid": "s"})


def test_connect_packets_carry_the_namespace_and_the_auth_payload():
    assert socketio.connect_packet() == "40"
    assert socketio.connect_packet("/webcall/1") == "40/webcall/1,"
    assert socketio.connect_packet("/", {"callId": "c"}) == '40{"callId":"c"}'
    assert socketio.disconnect_packet("/webcall/1") == "41/webcall/1,"


def test_events_carry_the_namespace_and_an_ack_id():
    assert (
        socketio.encode_event("join", {"a": 1}, namespace="/n", ack_id=4)
        == '42/n,4["join",{"a":1}]'
    )


def test_bytes_anywhere_in_an_event_become_attachments():
    frames = socketio.encode("audio", {"callId": "c", "audio": b"\x01\x02"}, namespace="/n")
    assert frames == [
        '451-/n,["audio",{"callId":"c","audio":{"_placeholder":true,"num":0}}]',
        b"\x01\x02",
    ]
    header, attachment = frames
    assert isinstance(header, str) and isinstance(attachment, bytes)
    decoder = socketio.Decoder("/n")
    assert decoder.receive_text(header) is None
    assert decoder.receive_binary(attachment) == socketio.Event(
        "audio", {"callId": "c", "audio": b"\x01\x02"}
    )


def test_a_repeated_binary_header_gives_each_chunk_its_own_payload():
    header = '451-["audio",{"callId":"c","pcm":{"_placeholder":true,"num":0}}]'
    first, second = decode(header, b"\x01", header, b"\x02")
    assert first == socketio.Event("audio", {"callId": "c", "pcm": b"\x01"})
    assert second == socketio.Event("audio", {"callId": "c", "pcm": b"\x02"})
    assert first.data is not second.data


def test_a_remembered_header_still_needs_its_attachment_before_text():
    header = '451-["audio.chunk",{"_placeholder":true,"num":0}]'
    decoder = socketio.Decoder()
    assert decoder.receive_text(header) is None
    decoder.receive_binary(b"\x01")
    assert decoder.receive_text(header) is None
    with pytest.raises(socketio.ProtocolViolation):
        decoder.receive_text('42["text",{}]')


def test_headers_that_vary_are_parsed_each_and_remembered_up_to_a_bound():
    decoder = socketio.Decoder()
    for n in range(3 * socketio.MAX_KNOWN_HEADERS):
        header = socketio.encode("audio", {"seq": n, "pcm": b"x"})[0]
        assert isinstance(header, str) and decoder.receive_text(header) is None
        assert decoder.receive_binary(b"x") == socketio.Event("audio", {"seq": n, "pcm": b"x"})
    assert len(decoder._event_headers) == socketio.MAX_KNOWN_HEADERS


def test_a_binary_event_of_another_namespace_is_skipped_with_its_attachments():
    decoder = socketio.Decoder("/n")
    foreign = '451-["audio",{"_placeholder":true,"num":0}]'
    ours = '451-/n,["audio",{"_placeholder":true,"num":0}]'
    for _ in range(2):  # and it is not remembered as ours
        assert decoder.receive_text(foreign) is None
        assert decoder.receive_binary(b"theirs") is None
    assert decoder.receive_text(ours) is None
    assert decoder.receive_binary(b"mine") == socketio.Event("audio", b"mine")
