"""The echo agent's rules, driven over the sandbox's real Socket.IO socket."""

from __future__ import annotations

import asyncio

import pytest

from tests.voicehub.test_session import start
from webcall_widget.voicehub.errors import UpstreamClosed
from webcall_widget.voicehub.events import (
    Audio,
    CallEnded,
    Joined,
    Message,
    Mode,
    UpstreamError,
    UpstreamEvent,
)


async def next_event(session):
    """The next event that is not agent audio (audio calls open with a chime)."""
    while True:
        event = await session.recv()
        if not isinstance(event, Audio):
            return event


@pytest.fixture
async def session_for(sandbox):
    opened = []

    async def open_(mode=Mode.TEXT):
        call_id, session = await start(sandbox, mode=mode)
        opened.append(session)
        return call_id, session

    yield open_
    for session in opened:
        await session.close()


async def test_text_call_may_not_join_audio(session_for):
    call_id, session = await session_for(Mode.TEXT)
    await session.join(call_id, ("audio", "text"))
    event = await session.recv()
    assert isinstance(event, UpstreamError)


@pytest.mark.parametrize("mode", [Mode.WEB_AUDIO, Mode.TEXT_AUDIO])
async def test_audio_calls_must_join_audio(session_for, mode):
    call_id, session = await session_for(mode)
    await session.join(call_id, ("text",))
    event = await session.recv()
    assert isinstance(event, UpstreamError) and "must join the audio" in event.message


async def test_audio_call_joining_audio_only_gets_no_greeting_text(session_for, sandbox):
    call_id, session = await session_for(Mode.WEB_AUDIO)
    await session.join(call_id, ("audio",))
    assert await session.recv() == Joined(("audio",))
    await session.send_text(call_id, "hello")
    event = await next_event(session)
    assert isinstance(event, UpstreamError)


async def test_unknown_call_cannot_join(session_for):
    _, session = await session_for()
    await session.join("no-such-call", ("text",))
    assert isinstance(await session.recv(), UpstreamError)


async def test_text_before_join_is_refused(session_for):
    call_id, session = await session_for()
    await session.send_text(call_id, "hello")
    assert isinstance(await session.recv(), UpstreamError)


async def test_voice_only_call_does_not_take_text(session_for):
    call_id, session = await session_for(Mode.WEB_AUDIO)
    await session.join(call_id, ("audio", "text"))
    await session.recv()
    await session.send_text(call_id, "hello")
    while not isinstance(event := await next_event(session), UpstreamError):
        pass
    assert "does not take text" in event.message


async def test_unknown_event_is_answered_with_an_error(session_for):
    call_id, session = await session_for()
    await session.emit("dance", {"callId": call_id})
    assert isinstance(await session.recv(), UpstreamError)


async def test_messages_are_answered_in_the_order_sent(session_for):
    call_id, session = await session_for()
    await session.join(call_id, ("text",))
    await session.recv()
    await session.recv()
    for word in ("first", "second", "third"):
        await session.send_text(call_id, word)
    finals: list[str] = []
    while len(finals) < 3:
        event = await session.recv()
        if isinstance(event, Message) and event.final:
            finals.append(event.text)
    assert finals == ["You said: first", "You said: second", "You said: third"]


async def test_leave_is_recorded(session_for, sandbox):
    call_id, session = await session_for()
    await session.join(call_id, ("text",))
    await session.recv()
    await session.leave(call_id, ("text",))
    await sandbox.state.await_for(
        lambda: sandbox.state.events(call_id, "in")[-1].event == "channel.leave"
    )
    assert sandbox.state.calls[call_id].joined == ()


async def test_goodbye_ends_the_call_and_drops_the_socket(session_for, sandbox):
    call_id, session = await session_for()
    await session.join(call_id, ("text",))
    await session.send_text(call_id, "Goodbye, thanks!")
    events = []
    with pytest.raises(UpstreamClosed):
        async with asyncio.timeout(5):
            while True:
                events.append(await session.recv())
    assert isinstance(events[-1], CallEnded)
    assert sandbox.state.calls[call_id].ended == "agent-hangup"


# audio

SPEECH_FRAME = __import__("webcall_widget.sandbox.audio", fromlist=["tone"]).tone(
    (300.0, 450.0), 0.02, 16000, level=0.2
)
SILENT_FRAME = bytes(640)


async def send_utterance(session, *, speech_frames=50, silence_frames=35):
    for _ in range(speech_frames):
        await session.send_audio(SPEECH_FRAME)
    for _ in range(silence_frames):
        await session.send_audio(SILENT_FRAME)


async def joined_voice_call(session_for, mode=Mode.WEB_AUDIO):
    call_id, session = await session_for(mode)
    await session.join(call_id, ("audio", "text"))
    assert await session.recv() == Joined(("audio", "text"))
    return call_id, session


async def test_utterance_is_announced_as_the_visitors_turn(session_for):
    call_id, session = await joined_voice_call(session_for)
    await send_utterance(session)
    while True:
        event = await next_event(session)
        if isinstance(event, Message) and event.role == "user":
            break
    assert event.text == "[1.0 s of speech]"
    assert event.final


async def test_utterance_is_echoed_back_paced_in_real_time(session_for, sandbox):
    import time

    call_id, session = await joined_voice_call(session_for)
    await send_utterance(session)
    while not (isinstance(e := await session.recv(), Message) and e.text.startswith("Echoing")):
        pass
    received, arrivals = 0, []
    while received < 32000 - 640:
        event = await session.recv()
        if isinstance(event, Audio):
            received += len(event.pcm)
            arrivals.append(time.monotonic())
    # 1 s of audio cannot arrive in much less than 1 s when paced (60 ms lead)
    assert arrivals[-1] - arrivals[0] > 0.8
    assert sandbox.state.audio_in[call_id] == 85 * 640


async def test_speaking_over_the_agent_clears_its_audio_and_stops_it(session_for, sandbox):
    call_id, session = await joined_voice_call(session_for)
    await send_utterance(session, speech_frames=100)  # 2 s to echo
    while not (isinstance(e := await session.recv(), Message) and e.text.startswith("Echoing")):
        pass
    await asyncio.sleep(0.3)  # the agent is talking
    for _ in range(15):  # 300 ms of speech: more than the 200 ms barge-in rule
        await session.send_audio(SPEECH_FRAME)
    events: list[UpstreamEvent] = []
    while not events or events[-1].__class__.__name__ != "AudioClear":
        events.append(await session.recv())
    out_at_clear = sandbox.state.audio_out[call_id]
    await asyncio.sleep(0.3)
    assert sandbox.state.audio_out[call_id] - out_at_clear <= 2 * 640  # it stopped
    assert out_at_clear < 2.2 * 32000 * 0.6  # well before the end of the echo


async def test_speaking_over_the_agent_keeps_its_replies_to_typed_messages(session_for):
    call_id, session = await joined_voice_call(session_for, Mode.TEXT_AUDIO)
    await send_utterance(session, speech_frames=100)  # 2 s to echo
    while not (isinstance(e := await session.recv(), Message) and e.text.startswith("Echoing")):
        pass
    await session.send_text(call_id, "typed while talking")  # answered after the echo
    for _ in range(15):  # then speaks over the echo
        await session.send_audio(SPEECH_FRAME)
    replies: list[Message] = []
    while not replies or not replies[-1].final:
        event = await asyncio.wait_for(session.recv(), 5)
        if isinstance(event, Message) and event.text.startswith("You said"):
            replies.append(event)
    assert replies[-1].text == "You said: typed while talking"


async def test_audio_before_joining_the_audio_channel_is_refused_once(session_for):
    call_id, session = await session_for(Mode.TEXT)
    await session.join(call_id, ("text",))
    await session.recv()
    for _ in range(5):
        await session.send_audio(SPEECH_FRAME)
    await session.send_text(call_id, "after audio")
    errors = []
    while True:
        event = await session.recv()
        if isinstance(event, UpstreamError):
            errors.append(event)
        if isinstance(event, Message) and event.final and "after audio" in event.text:
            break
    assert len(errors) == 1


async def test_loopback_agent_returns_every_frame_at_once(sandbox):
    call_id, session = await start(sandbox, mode=Mode.WEB_AUDIO, agent_id="loopback-agent")
    try:
        await session.join(call_id, ("audio", "text"))
        await session.recv()
        frames = [bytes([i]) * 640 for i in range(10)]
        for frame in frames:
            await session.send_audio(frame)
        echoed: list[bytes] = []
        while len(echoed) < 10:
            event = await session.recv()
            if isinstance(event, Audio):
                echoed.append(event.pcm)
        assert echoed == frames
    finally:
        await session.close()
