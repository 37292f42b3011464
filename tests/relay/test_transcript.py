"""Whether the agent has finished: what a stopping process waits for before it sends the
visitor on (``Transcript.agent_busy``)."""

from __future__ import annotations

import asyncio

from tests.relay.fakes import FakeRecorder, make_call
from webcall_widget.relay.transcript import Transcript
from webcall_widget.voicehub.events import Message, Role


def transcript() -> Transcript:
    return Transcript(make_call(), FakeRecorder())


def test_a_call_nobody_spoke_in_has_no_answer_to_wait_for():
    assert not transcript().agent_busy


def test_a_typed_message_waits_for_the_agents_answer():
    said = transcript()
    said.typed_message("hello", "w1")
    assert said.agent_busy
    said.heard(Message("a-1", Role.AGENT, "You said: hello", final=True))
    assert not said.agent_busy


def test_an_agent_message_under_way_is_waited_for_until_its_final_version():
    said = transcript()
    said.heard(Message("a-1", Role.AGENT, "Hello", final=False))
    assert said.agent_busy
    said.heard(Message("a-1", Role.AGENT, "Hello there", final=True))
    assert not said.agent_busy


def test_what_the_visitor_said_aloud_waits_for_the_agents_answer():
    said = transcript()
    said.heard(Message("u-1", Role.USER, "can you hear me", final=True))
    assert said.agent_busy


def test_the_visitor_still_speaking_is_not_the_agent_being_busy():
    said = transcript()
    said.heard(Message("u-1", Role.USER, "can you", final=False))
    assert not said.agent_busy


def test_an_agent_greeting_after_the_visitors_echo_is_their_answer():
    said = transcript()
    said.typed_message("hi", "w1")
    said.heard(Message("u-1", Role.USER, "hi", final=True))  # VoiceHub's echo: not shown
    assert said.agent_busy
    said.heard(Message("a-1", Role.AGENT, "Hi!", final=True))
    assert not said.agent_busy


async def test_a_wait_for_the_agent_returns_when_it_has_answered():
    said = transcript()
    said.typed_message("hello", "w1")
    waiting = asyncio.create_task(said.agent_done())
    await asyncio.sleep(0)
    assert not waiting.done()
    said.heard(Message("a-1", Role.AGENT, "You said: hello", final=True))
    await asyncio.wait_for(waiting, 1)


async def test_a_wait_for_the_agent_returns_when_the_call_ends():
    said = transcript()
    said.typed_message("hello", "w1")
    waiting = asyncio.create_task(said.agent_done())
    await said.close()
    await asyncio.wait_for(waiting, 1)
