"""The probe against every sandbox variant: it records, finds, and suggests settings that
then carry a text and a voice round trip through the relay."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from tests import canary
from tests.relay.round_trips import live, text_round_trip, voice_round_trip
from tests.relay.test_consumer import receive_until
from webcall_widget.models import Call, CallStatus
from webcall_widget.probe import LIMITS, ProbeOptions, ProbeResult, run_probe
from webcall_widget.sandbox.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY
from webcall_widget.sandbox.variants import VARIANTS, variant_profile
from webcall_widget.voicehub.events import Mode
from webcall_widget.voicehub.secret import Secret

# What a site owner must tell the probe for each variant, beyond what it finds itself:
# the credentials it does not guess (the key is never tried unasked, nor a CONNECT
# payload beyond the call's id).
FLAGS: dict[str, dict[str, Any]] = {
    "auth-key-headers": {"CONNECT_HEADERS": VARIANTS["auth-key-headers"]["CONNECT_HEADERS"]},
    "auth-query-websocket": dict(VARIANTS["auth-query-websocket"]),
    "everything": {"CONNECT_AUTH": VARIANTS["everything"]["CONNECT_AUTH"]},
}


async def probe(sandbox, flags: dict[str, Any], **options: Any) -> ProbeResult:
    defaults: dict[str, Any] = {
        "base_url": sandbox.url,
        "agent_id": SANDBOX_AGENT_ID,
        "api_key": Secret(SANDBOX_API_KEY),
        "mode": Mode.TEXT_AUDIO,
        "upstream": flags,
        "fixed": frozenset(flags),
        "seconds": 20,
        "connect_timeout": 4,
        "join_timeout": 4,
        "quiet": 0.5,
        "realtime": False,  # the sandbox needs no pacing: the test goes faster
    }
    return await run_probe(ProbeOptions(**{**defaults, **options}))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
async def test_the_probe_suggests_settings_that_then_work(
    variant, variant_sandbox, settings, agent, async_client, open_socket
):
    flags = FLAGS.get(variant, {})
    sandbox = variant_sandbox(variant, upstream=flags)
    result = await probe(sandbox, flags)
    assert result.failure is None, result.failure.describe()
    assert result.analysis is not None
    settings.WEBCALL_WIDGET = {
        "UPSTREAM": {
            **result.analysis.suggested,
            "URL": sandbox.url,
            "CONNECT_TIMEOUT": 5,
            "JOIN_TIMEOUT": 5,
        }
    }
    rate = variant_profile(variant).audio_out.rate
    await text_round_trip(async_client, open_socket, agent)
    await voice_round_trip(async_client, open_socket, agent, rate)
    calls = [call async for call in Call.objects.all()]
    assert [(c.upstream_unknown_events, c.upstream_bad_payloads) for c in calls] == [(0, 0)] * 2
    assert [c.upstream_notes for c in calls] == ["", ""]


async def test_the_probe_says_how_agent_audio_arrived(variant_sandbox):
    sandbox = variant_sandbox("audio-base64", upstream={})
    result = await probe(sandbox, {})
    assert result.analysis is not None
    assert any(
        finding.startswith("agent audio arrived as base64 in field `audio` of event `audio.chunk`")
        for finding in result.analysis.findings
    )
    assert result.analysis.changes["AUDIO_OUT_FORMAT"] == "base64"


async def test_the_probe_measures_the_agents_sample_rate(variant_sandbox):
    sandbox = variant_sandbox("output-24k", upstream={})
    result = await probe(sandbox, {})
    assert result.analysis is not None
    assert any("~24000 Hz" in finding for finding in result.analysis.findings)
    assert result.analysis.changes == {"OUTPUT_SAMPLE_RATE": 24000}


async def test_the_probe_never_tries_the_key_unasked(variant_sandbox):
    sandbox = variant_sandbox("auth-key-headers", upstream={})
    result = await probe(sandbox, {})
    assert result.failure is not None and result.failure.stage == "socket"
    assert any("{apiKey}" in step for step in result.failure.next_steps)
    assert len(sandbox.state.calls) == 1  # one call created, whatever was tried


async def test_a_join_nobody_answers_says_what_to_try(variant_sandbox):
    sandbox = variant_sandbox("default")
    sandbox.faults.join_silent = True
    result = await probe(sandbox, {}, join_timeout=1)
    assert result.failure is not None and result.failure.stage == "join"
    assert result.failure.message == "nothing came within 1s of 'channel.join'"
    assert any("EVENTS" in step for step in result.failure.next_steps)


async def test_the_probe_leaves_the_channels_it_joined(variant_sandbox):
    sandbox = variant_sandbox("default")
    await probe(sandbox, {}, mode=Mode.TEXT, bye="")
    (vh_call,) = sandbox.state.calls
    await sandbox.state.await_for(lambda: sandbox.state.calls[vh_call].ended)
    events = [r.event for r in sandbox.state.events(vh_call, "in")]
    assert events[0] == "channel.join" and events[-1] == "channel.leave"


async def test_the_probe_stops_after_its_seconds(variant_sandbox):
    sandbox = variant_sandbox("default")
    result = await probe(sandbox, {}, seconds=1.0)
    assert result.observation.records[-1].t < 3.5
    assert result.notes == ["stopped after 1s (--seconds)"]


# learning what the configured settings do not say


async def test_visitor_audio_is_tried_under_the_mirror_of_the_agents_event(variant_sandbox):
    sandbox = variant_sandbox("audio-in-out", upstream={})
    result = await probe(sandbox, {})
    assert result.analysis is not None
    assert result.analysis.changes == {
        "AUDIO_OUT_EVENT": "audio.out",
        "AUDIO_IN_EVENT": "audio.in",
    }
    assert (
        "the agent reacted to our audio sent as event 'audio.in', binary, 16000 Hz (before "
        "that: event 'audio.chunk', binary, 16000 Hz: VoiceHub answered that it does not "
        "know the event)"
    ) in result.analysis.findings


async def test_events_voicehub_does_not_know_are_tried_under_the_names_it_suggests(
    variant_sandbox,
):
    sandbox = variant_sandbox("renamed-events", upstream={})
    result = await probe(sandbox, {}, mode=Mode.TEXT)
    assert result.analysis is not None
    assert result.analysis.changes == {
        "EVENTS": {
            "created": "transcript",
            "text_message": "chat.message",
            "call_ended": "call.finished",
        }
    }
    assert [(t.name, t.answer) for t in result.observation.texts] == [
        ("text.message", "unknown"),
        ("chat.message", "answered"),
    ]


@pytest.mark.django_db(transaction=True)
async def test_a_call_the_agent_never_ended_is_said_and_its_later_close_ends_it_normally(
    variant_sandbox, settings, agent, async_client, open_socket
):
    sandbox = variant_sandbox("agent-never-hangs-up", upstream={})
    result = await probe(sandbox, {}, mode=Mode.TEXT)
    assert result.analysis is not None
    assert result.analysis.changes == {"CALL_END": "either"}
    assert "the call did not end by itself during the probe" in result.analysis.findings
    settings.WEBCALL_WIDGET = {"UPSTREAM": {**result.analysis.suggested, "URL": sandbox.url}}
    sandbox.faults.drop_on_text = "that is all"  # VoiceHub closes the socket, no event
    call_id, socket = await live(async_client, open_socket, agent, "text")
    await socket.send_json_to({"type": "text", "text": "that is all"})
    frames = await receive_until(socket, lambda f: f["type"] == "ended")
    assert frames[-1] == {"type": "ended", "reason": "upstream-ended"}
    call = await Call.objects.aget(pk=call_id)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "upstream-ended")


async def test_rejoin_works_where_a_new_socket_may_go_on_with_the_call(variant_sandbox):
    sandbox = variant_sandbox("default")
    result = await probe(sandbox, {}, mode=Mode.TEXT)
    assert result.analysis is not None
    assert "REJOIN" not in result.analysis.changes
    assert (
        "rejoin works: a new socket joined the call under way after the first was dropped, "
        "and the agent answered on it"
    ) in result.analysis.findings
    (call,) = sandbox.state.calls.values()
    assert call.rejoins == 1 and "Are you still there?" in call.said


async def test_a_refused_rejoin_suggests_never(variant_sandbox):
    sandbox = variant_sandbox("no-rejoin", upstream={})
    result = await probe(sandbox, {}, mode=Mode.TEXT)
    assert result.analysis is not None
    assert result.analysis.changes == {"REJOIN": "never", "CALL_END": "either"}
    (refused,) = [f for f in result.analysis.findings if f.startswith("VoiceHub refused")]
    assert "is under way on another connection and cannot be joined again" in refused
    assert refused.endswith("calls cannot move to another process (REJOIN 'never')")


@pytest.mark.parametrize("mode", [Mode.WEB_AUDIO])
async def test_a_voice_only_rejoin_is_checked_by_speaking(variant_sandbox, mode):
    sandbox = variant_sandbox("default")
    result = await probe(sandbox, {}, mode=mode)
    assert result.observation.rejoin is not None
    assert (result.observation.rejoin.outcome, result.observation.rejoin.answered) == (
        "rejoined",
        True,
    )
    (vh_call,) = sandbox.state.calls
    assert sandbox.state.calls[vh_call].rejoins == 1


async def test_the_probe_can_be_told_not_to_drop_its_socket(variant_sandbox):
    sandbox = variant_sandbox("default")
    result = await probe(sandbox, {}, mode=Mode.TEXT, rejoin=False)
    assert result.analysis is not None
    assert "rejoin not tried: --no-rejoin" in result.analysis.findings
    (call,) = sandbox.state.calls.values()
    assert call.rejoins == 0


# the command


@pytest.fixture
def probed_agent(agent_factory):
    return agent_factory(slug="probed", default_mode="TextAudio")


def run_command(*args: str) -> str:
    out = io.StringIO()
    call_command("webcall_probe", *args, stdout=out)
    return out.getvalue()


def test_the_command_warns_that_it_costs_a_call_and_prints_the_settings_to_use(
    variant_sandbox, probed_agent, tmp_path
):
    sandbox = variant_sandbox("namespace", upstream={})
    out = tmp_path / "probe.json"
    printed = run_command("probed", "--seconds", "12", "--out", str(out))
    assert "with its API key: this costs a call." in printed.splitlines()[0]
    assert "the socket opened only with SOCKET_PATH_AS = 'namespace'" in printed
    assert "WEBCALL_WIDGET = {'UPSTREAM': {'URL': '" + sandbox.url in printed
    assert "'SOCKET_PATH_AS': 'namespace'" in printed
    recorded = json.loads(out.read_text())
    assert recorded["suggested"]["UPSTREAM"]["SOCKET_PATH_AS"] == "namespace"
    audio = [e for e in recorded["events"] if e["event"] == "audio.chunk" and e["dir"] == "in"]
    assert audio and audio[0]["data"] == "<binary 640 bytes>"


def test_the_command_never_shows_the_key(variant_sandbox, probed_agent, tmp_path):
    """Not even when VoiceHub echoes it (the flood fault sends it in unknown events)."""
    sandbox = variant_sandbox("auth-key-headers", upstream={})
    sandbox.faults.flood_on_text = "Hello! This is a connection test."
    out = tmp_path / "probe.json"
    headers = json.dumps(VARIANTS["auth-key-headers"]["CONNECT_HEADERS"])
    printed = run_command(
        "probed",
        "--mode",
        "text",
        "--seconds",
        "6",
        "--out",
        str(out),
        "--set",
        f"CONNECT_HEADERS={headers}",
    )
    written = out.read_text()
    assert '"apiKey": "[redacted]"' in written
    assert "{apiKey}" in written  # the template, as configured
    for text in (printed, written):
        assert SANDBOX_API_KEY not in text
        canary.scan("probe output", text)


def test_the_command_says_what_it_could_not_learn_instead_of_your_settings_fit(
    variant_sandbox, probed_agent, tmp_path
):
    variant_sandbox("agent-never-hangs-up", upstream={})
    printed = run_command("probed", "--mode", "text", "--out", str(tmp_path / "p.json"))
    assert "Your settings fit" not in printed
    assert "'CALL_END': 'either'" in printed
    not_learnt = printed.split("Not learnt in this run:\n")[1]
    assert not_learnt.startswith("  - how VoiceHub ends a call")
    assert "What no probe can learn (see docs/probe-limits.md):" in printed
    assert all(f"  - {limit}" in printed for limit in LIMITS)


def test_the_command_skips_the_rejoin_when_asked(variant_sandbox, probed_agent, tmp_path):
    sandbox = variant_sandbox("default")
    out = tmp_path / "p.json"
    printed = run_command("probed", "--mode", "text", "--no-rejoin", "--out", str(out))
    assert "rejoin not tried: --no-rejoin" in printed
    assert any("REJOIN" in item for item in json.loads(out.read_text())["unlearnt"])
    (call,) = sandbox.state.calls.values()
    assert call.rejoins == 0


def test_a_refused_call_says_what_to_check(variant_sandbox, agent_factory, tmp_path):
    variant_sandbox("default")
    agent_factory(slug="wrong-key", api_key="not-a-sandbox-key")
    with pytest.raises(CommandError, match="check the agent's API key in the admin"):
        run_command("wrong-key", "--out", str(tmp_path / "p.json"))
    assert json.loads((tmp_path / "p.json").read_text())["failure"]["stage"] == "create"


def test_a_socket_that_will_not_open_says_what_to_try(variant_sandbox, probed_agent, tmp_path):
    variant_sandbox("auth-key-headers", upstream={})
    with pytest.raises(CommandError, match="CONNECT_HEADERS"):
        run_command("probed", "--no-guess", "--out", str(tmp_path / "p.json"))


def test_without_a_voicehub_url_the_command_explains(db, probed_agent, settings):
    settings.WEBCALL_WIDGET = {}
    with pytest.raises(CommandError, match="UPSTREAM.URL is not set"):
        run_command("probed")


def test_an_unknown_agent_is_named(db):
    with pytest.raises(CommandError, match="No agent has the slug 'nobody'"):
        run_command("nobody", "--url", "http://127.0.0.1:9")


def test_flags_that_make_no_sense_are_refused_before_any_call(variant_sandbox, probed_agent):
    sandbox = variant_sandbox("default")
    with pytest.raises(CommandError, match="AUDIO_IN_FORMAT must be one of"):
        run_command("probed", "--set", "AUDIO_IN_FORMAT=wav")
    assert sandbox.state.calls == {}
