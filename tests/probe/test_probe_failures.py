"""The probe when VoiceHub refuses or fails a step: what it records, and what it tells
the site owner to try (against the sandbox, told to misbehave)."""

from __future__ import annotations

import asyncio

import pytest

from tests.probe.test_probe import probe
from webcall_widget.voicehub.events import Mode
from webcall_widget.voicehub.secret import Secret


@pytest.mark.parametrize(
    ("status", "mode", "hint"),
    [
        (400, Mode.TEXT, "check the agent's VoiceHub agent id in the admin"),
        (403, Mode.TEXT, "add credits to the VoiceHub account (VoiceHub answered 403)"),
        (405, Mode.TEXT, "this agent does not take text calls: try --mode TextAudio"),
        (405, Mode.WEB_AUDIO, "this agent does not take WebAudio calls: try --mode text"),
        (502, Mode.TEXT, "did not answer create-web-call as VoiceHub does"),
    ],
)
async def test_a_refused_call_says_what_to_check_for_each_answer(
    variant_sandbox, status, mode, hint
):
    sandbox = variant_sandbox("default")
    sandbox.faults.create_status = status
    result = await probe(sandbox, {}, mode=mode)
    assert result.failure is not None and result.failure.stage == "create"
    assert any(hint in step for step in result.failure.next_steps)
    assert result.observation.records == [] and result.analysis is None


async def test_a_key_that_cannot_be_sent_in_a_header_is_to_be_typed_again(variant_sandbox):
    sandbox = variant_sandbox("default")
    result = await probe(sandbox, {}, api_key=Secret("pasted\nwith a line break"))
    assert result.failure is not None and result.failure.stage == "create"
    assert result.failure.next_steps == [
        "type the agent's API key and VoiceHub agent id again in the admin"
    ]
    assert sandbox.state.calls == {}


async def fault_once_the_visitor_spoke(sandbox, fault: str) -> None:
    """Set ``fault`` once the agent heard the probe's first text: before the rejoin."""
    await sandbox.state.await_for(
        lambda: any(call.said for call in sandbox.state.calls.values()), 20
    )
    setattr(sandbox.faults, fault, True)


async def test_a_second_socket_that_does_not_open_is_recorded_and_suggests_never(
    variant_sandbox,
):
    sandbox = variant_sandbox("default")
    faulting = asyncio.create_task(fault_once_the_visitor_spoke(sandbox, "refuse_socket"))
    result = await probe(sandbox, {}, mode=Mode.TEXT, quiet=1.0)
    await faulting
    rejoin = result.observation.rejoin
    assert rejoin is not None and rejoin.outcome == "no-socket"
    assert result.analysis is not None and result.analysis.changes["REJOIN"] == "never"
    assert any(
        "a second socket for the call under way did not open" in f
        for f in result.analysis.findings
    )


async def test_a_rejoin_nothing_confirms_is_recorded_as_unanswered_and_suggests_never(
    variant_sandbox,
):
    sandbox = variant_sandbox("default")
    faulting = asyncio.create_task(fault_once_the_visitor_spoke(sandbox, "join_silent"))
    result = await probe(sandbox, {}, mode=Mode.TEXT, quiet=1.0, join_timeout=1)
    await faulting
    rejoin = result.observation.rejoin
    assert rejoin is not None and rejoin.outcome == "unanswered"
    assert result.analysis is not None and result.analysis.changes["REJOIN"] == "never"


async def test_a_text_event_set_by_a_flag_is_not_guessed_when_voicehub_does_not_know_it(
    variant_sandbox,
):
    sandbox = variant_sandbox("renamed-events", upstream={})
    flags = {"EVENTS": {"text_message": "text.message"}}
    result = await probe(sandbox, flags, mode=Mode.TEXT)
    assert [(t.name, t.answer) for t in result.observation.texts] == [("text.message", "unknown")]
    assert result.analysis is not None
    assert any("text_message" in item for item in result.analysis.unlearnt)
