"""Audio cut and joined to the frame length each leg takes (AUDIO_FRAME_MS, UPSTREAM.FRAME_MS)."""

from __future__ import annotations

import asyncio

from tests.relay.virtual_time import run
from webcall_widget.relay.framing import AgentAudio, Frames
from webcall_widget.voicehub.events import AudioFormat

AT_16K = AudioFormat(input_rate=16000, output_rate=16000, frame_ms=60)  # 1920-byte frames


def numbered(count: int, size: int) -> list[bytes]:
    return [bytes([n]) * size for n in range(count)]


def test_a_long_piece_is_cut_into_frames_in_order():
    frames = Frames(640)
    piece = b"".join(numbered(3, 640))
    assert frames.cut(piece) == numbered(3, 640)
    assert not frames.waiting


def test_short_pieces_are_joined_into_one_frame_once_it_is_whole():
    frames = Frames(1920)
    pieces = numbered(3, 640)
    assert frames.cut(pieces[0]) == []
    assert frames.cut(pieces[1]) == []
    assert frames.cut(pieces[2]) == [b"".join(pieces)]


def test_what_is_left_waits_for_the_next_piece():
    frames = Frames(640)
    assert frames.cut(bytes(1000)) == [bytes(640)]
    assert frames.waiting
    assert frames.cut(bytes(280)) == [bytes(640)]
    assert not frames.waiting


def test_a_piece_of_the_right_size_goes_through_as_it_is():
    frames = Frames(640)
    piece = bytes(640)
    assert frames.cut(piece)[0] is piece


def test_agent_audio_in_20_ms_frames_goes_to_a_20_ms_browser_untouched():
    sent: list[bytes] = []

    async def scenario() -> None:
        audio = AgentAudio(AudioFormat(frame_ms=20))
        for piece in (bytes(100), bytes(640), bytes(5000)):
            await audio.send(piece, _collect(sent))
        await audio.close()

    run(scenario())
    assert [len(piece) for piece in sent] == [100, 640, 5000]


def test_agent_audio_is_joined_into_the_browsers_longer_frames():
    sent: list[bytes] = []

    async def scenario() -> None:
        audio = AgentAudio(AT_16K)
        for piece in numbered(6, 640):
            await audio.send(piece, _collect(sent))
        await audio.close()

    run(scenario())
    assert sent == [b"".join(numbered(3, 640)), b"".join(numbered(6, 640)[3:])]


def test_the_end_of_an_utterance_goes_one_frame_after_its_last_piece():
    sent: list[tuple[float, int]] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()

        async def send(pcm: bytes) -> None:
            sent.append((loop.time(), len(pcm)))

        audio = AgentAudio(AT_16K)
        for piece in numbered(4, 640):
            await audio.send(piece, send)
            await asyncio.sleep(0.02)
        await asyncio.sleep(1)
        await audio.close()

    run(scenario())
    assert [size for _, size in sent] == [1920, 640]
    assert abs(sent[1][0] - (0.06 + 0.06)) < 1e-6, "sent 60 ms after the last piece came"


def test_an_interrupted_agent_loses_what_waits():
    sent: list[bytes] = []

    async def scenario() -> None:
        audio = AgentAudio(AT_16K)
        await audio.send(bytes(640), _collect(sent))
        audio.clear()
        await asyncio.sleep(1)
        await audio.send(bytes(1920), _collect(sent))
        await audio.close()

    run(scenario())
    assert [len(piece) for piece in sent] == [1920]


def test_closing_drops_the_waiting_rest_without_sending_it():
    sent: list[bytes] = []

    async def scenario() -> None:
        audio = AgentAudio(AT_16K)
        await audio.send(bytes(640), _collect(sent))
        await audio.close()
        await asyncio.sleep(1)

    run(scenario())
    assert sent == []


def _collect(sent: list[bytes]):
    async def send(pcm: bytes) -> None:
        sent.append(pcm)

    return send


def test_an_utterance_end_the_gone_socket_refuses_is_let_go_quietly(caplog):
    async def scenario() -> None:
        async def send(pcm: bytes) -> None:
            if len(pcm) < 1920:
                raise ConnectionResetError("the browser went away")

        audio = AgentAudio(AT_16K)
        await audio.send(bytes(640), send)
        await asyncio.sleep(1)
        await audio.close()

    with caplog.at_level("DEBUG", logger="webcall_widget.relay"):
        run(scenario())
    assert "could not be sent: ConnectionResetError" in caplog.text
