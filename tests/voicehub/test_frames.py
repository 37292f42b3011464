"""The client frames the session writes itself, read back by websockets' own parser."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from webcall_widget.voicehub.frames import client_frame, client_frames


def parse(data: bytes) -> list[Frame]:
    """What a websockets server makes of ``data`` (it refuses unmasked client frames)."""
    server = ServerProtocol(state=State.OPEN, max_size=None)
    server.receive_data(data)
    assert server.state is State.OPEN, server.close_exc
    return server.events_received()  # type: ignore[return-value]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_a_binary_frame_of_any_length_reads_back_whole(size):
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    [frame] = parse(client_frame(payload))
    assert (frame.opcode, frame.fin, frame.data) == (Opcode.BINARY, True, payload)


def test_a_str_is_a_text_frame_in_utf8():
    [frame] = parse(client_frame('42["text",{"t":"é"}]'))
    assert (frame.opcode, frame.data) == (Opcode.TEXT, '42["text",{"t":"é"}]'.encode())


def test_several_frames_come_back_in_order_from_one_chunk():
    header = '451-["audio.chunk",{"_placeholder":true,"num":0}]'
    frames = parse(client_frames((header, b"\x01\x02" * 320)))
    assert [(f.opcode, f.data) for f in frames] == [
        (Opcode.TEXT, header.encode()),
        (Opcode.BINARY, b"\x01\x02" * 320),
    ]


def test_every_frame_has_a_fresh_masking_key():
    keys = {client_frame(b"same")[2:6] for _ in range(2000)}
    assert len(keys) > 1990  # 2000 draws from 2**32: a repeat or two at most
