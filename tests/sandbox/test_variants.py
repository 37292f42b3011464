"""The sandbox's protocol variants: each is valid settings, and the sandbox speaks it."""

from __future__ import annotations

import asyncio

import pytest

from webcall_widget.conf import problems
from webcall_widget.sandbox.__main__ import build_config, parse_args
from webcall_widget.sandbox.admission import refusal
from webcall_widget.sandbox.state import SandboxCall
from webcall_widget.sandbox.variants import VARIANTS, variant_config, variant_settings
from webcall_widget.voicehub.client import create_web_call
from webcall_widget.voicehub.events import Mode
from webcall_widget.voicehub.profile import ConnectTemplate, SocketPathAs


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_is_valid_upstream_settings(variant):
    assert problems({"UPSTREAM": variant_settings(variant)}) == []


def test_a_variants_rates_are_the_sandboxs_own():
    assert variant_config("output-24k").audio.output_rate == 24000


def test_the_command_line_picks_a_variant():
    config = build_config(parse_args(["--variant", "namespace"]))
    assert config.profile.socket_path_as is SocketPathAs.NAMESPACE


@pytest.mark.parametrize(
    ("variant", "socket_path"),
    [("default", "/socket.io"), ("namespace", "/webcall/{id}"), ("websocket", "/ws")],
)
async def test_create_web_call_answers_the_socket_path_of_the_variant(
    variant, socket_path, variant_sandbox
):
    sandbox = variant_sandbox(variant)
    created = await asyncio.to_thread(
        create_web_call,
        sandbox.url,
        api_key="sandbox-key",
        agent_id="echo-agent",
        mode=Mode.TEXT,
        timeout=5,
    )
    assert created.socket_path == socket_path.format(id=created.call_id)


async def test_a_full_url_variant_answers_a_url_with_the_call(variant_sandbox):
    sandbox = variant_sandbox("full-url")
    created = await asyncio.to_thread(
        create_web_call,
        sandbox.url,
        api_key="sandbox-key",
        agent_id="echo-agent",
        mode=Mode.TEXT,
        timeout=5,
    )
    assert created.socket_path == f"{sandbox.server.ws_url}/socket.io?call={created.call_id}"


CALL = SandboxCall("c1", "echo-agent", Mode.TEXT, "sandbox-key")


def test_a_socket_carrying_a_calls_credentials_is_let_in():
    template = ConnectTemplate(
        auth={"callId": "{callId}"}, headers={"X-Api-Access-Key": "{apiKey}"}
    )
    assert (
        refusal(
            template,
            [CALL],
            auth={"callId": "c1"},
            query={},
            headers={"x-api-access-key": "sandbox-key"},
        )
        is None
    )


def test_a_socket_without_them_is_told_what_is_missing():
    template = ConnectTemplate(query={"callId": "{callId}"})
    reason = refusal(template, [CALL], auth=None, query={"callId": "other"}, headers={})
    assert reason == "unauthorized: this socket needs query ['callId'] of a call"


def test_a_sandbox_without_templates_lets_everyone_in():
    assert refusal(ConnectTemplate(), [], auth=None, query={}, headers={}) is None
