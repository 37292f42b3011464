"""``python -m webcall_widget.sandbox`` serves a working sandbox on its own."""

from __future__ import annotations

import subprocess
import sys

import pytest

from webcall_widget.sandbox.__main__ import build_config, parse_args
from webcall_widget.voicehub import errors
from webcall_widget.voicehub.client import create_web_call
from webcall_widget.voicehub.events import Mode


def test_extra_keys_and_agents_come_from_the_command_line():
    config = build_config(parse_args(["--api-key", "k1", "--agent", "sales:text,TextAudio"]))
    assert "k1" in config.api_keys and config.api_keys["k1"] is None
    assert config.agents["sales"].modes == frozenset({Mode.TEXT, Mode.TEXT_AUDIO})
    assert "echo-agent" in config.agents


def test_webhooks_are_configured_from_the_command_line():
    config = build_config(
        parse_args(["--webhook-url", "http://site.test/hook", "--webhook-secret", "s3cret"])
    )
    assert (config.webhook_url, config.webhook_secret) == ("http://site.test/hook", "s3cret")
    assert build_config(parse_args([])).webhook_url is None


def test_the_rejoin_grace_comes_from_the_command_line():
    assert build_config(parse_args(["--rejoin-grace", "5"])).rejoin_grace == 5.0
    assert build_config(parse_args([])).rejoin_grace == 60.0


def test_standalone_sandbox_creates_calls_over_http():
    process = subprocess.Popen(
        [sys.executable, "-m", "webcall_widget.sandbox", "--port", "0", "--api-key", "own-key"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("VoiceHub sandbox listening on http://127.0.0.1:")
        url = line.split(" on ", 1)[1].strip()
        created = create_web_call(
            url, api_key="own-key", agent_id="echo-agent", mode=Mode.TEXT, timeout=5
        )
        assert created.socket_path == "/socket.io"
        with pytest.raises(errors.InvalidApiKey):
            create_web_call(url, api_key="other", agent_id="echo-agent", mode=Mode.TEXT, timeout=5)
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
