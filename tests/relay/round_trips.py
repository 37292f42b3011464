"""A visitor's text and voice round trips through the relay, for any upstream profile."""

from __future__ import annotations

from typing import Any

from tests.relay.test_consumer import (
    hang_up,
    hang_up_after_audio,
    next_json,
    open_call,
    receive_until,
)
from webcall_widget.probe.speech import frames, silence, speech_like

SPEECH_SECONDS = 1.0


async def live(async_client: Any, open_socket: Any, agent: Any, mode: str) -> tuple[str, Any]:
    """A call past ``ready`` and the greeting (audio frames skipped)."""
    call_id, socket = await open_call(async_client, open_socket, agent, mode)
    ready = await next_json(socket)
    assert ready["type"] == "ready", ready
    greeting = await next_json(socket)
    assert (greeting["role"], greeting["final"]) == ("agent", True), greeting
    return call_id, socket


async def text_round_trip(async_client: Any, open_socket: Any, agent: Any) -> str:
    """Say something, get the agent's streamed reply in one bubble, hang up; the call id."""
    call_id, socket = await live(async_client, open_socket, agent, "text")
    await socket.send_json_to({"type": "text", "text": "hello over there"})
    shown = await next_json(socket)
    assert (shown["role"], shown["text"]) == ("user", "hello over there")
    reply = await receive_until(socket, lambda f: f["type"] == "message" and f["final"])
    assert reply[-1]["role"] == "agent", reply
    assert reply[-1]["text"] == "You said: hello over there", reply
    assert len({f["id"] for f in reply}) == 1, "the partials and the reply share one bubble"
    assert all(f["type"] == "message" for f in reply), reply
    await hang_up(socket)
    return call_id


async def voice_round_trip(
    async_client: Any, open_socket: Any, agent: Any, rate: int, seconds: float = SPEECH_SECONDS
) -> int:
    """Speak for ``seconds``, see the visitor's turn and the agent's answer, hear the echo
    at the agent's ``rate``; the bytes of agent audio heard after speaking."""
    _, socket = await live(async_client, open_socket, agent, "TextAudio")
    pcm = speech_like(seconds, 16000) + silence(0.8, 16000)
    for chunk in frames(pcm, 16000):
        await socket.send_to(bytes_data=chunk)
    turn = await receive_until(socket, lambda f: f["type"] == "message" and f["role"] == "user")
    assert turn[-1]["text"] == f"[{seconds:.1f} s of speech]"
    answer = await next_json(socket)
    assert (answer["role"], answer["text"]) == (
        "agent",
        f"Echoing {seconds:.1f} seconds of audio.",
    )
    heard = 0
    expected = int(seconds * rate) * 2
    while heard < expected * 0.95:
        output = await socket.receive_output(timeout=5)
        assert output["type"] == "websocket.send", output
        if output.get("bytes") is not None:
            heard += len(output["bytes"])
    await hang_up_after_audio(socket)
    return heard


__all__ = ["hang_up", "hang_up_after_audio", "live", "text_round_trip", "voice_round_trip"]
