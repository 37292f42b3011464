from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from webcall_widget.conf import DOCS, build, get_settings, problems
from webcall_widget.voicehub.events import Transport


def test_defaults_build_without_problems():
    settings = build({}, debug=True)
    assert settings.upstream.url is None
    assert settings.upstream.uses_sandbox
    assert settings.upstream.transport is Transport.SOCKETIO
    assert settings.upstream.audio.input_rate == 16000
    assert settings.socket_path == "/ws/webcall/"
    assert settings.connect_token_max_age == 60


def test_sandbox_follows_debug_when_not_set():
    assert build({}, debug=True).sandbox.enabled is True
    assert build({}, debug=False).sandbox.enabled is False


def test_sandbox_enabled_explicitly_wins_over_debug():
    assert build({"SANDBOX": {"ENABLED": True}}, debug=False).sandbox.enabled is True


def test_upstream_url_loses_its_trailing_slash():
    settings = build({"UPSTREAM": {"URL": "https://voicehub.example/"}}, debug=False)
    assert settings.upstream.url == "https://voicehub.example"


def test_event_names_can_be_overridden_one_by_one():
    settings = build({"UPSTREAM": {"EVENTS": {"text_message": "message.send"}}}, debug=False)
    assert settings.upstream.events.text_message == "message.send"
    assert settings.upstream.events.join == "channel.join"


def test_unknown_key_suggests_the_closest_known_one():
    (problem,) = problems({"UPSTRAEM": {}})
    assert problem.kind == "unknown-key"
    assert "UPSTRAEM" in problem.message
    assert "'UPSTREAM'" in problem.hint


def test_unknown_nested_key_is_reported_with_its_section():
    (problem,) = problems({"UPSTREAM": {"TIMEOUT": 3}})
    assert problem.key == "UPSTREAM.TIMEOUT"
    assert problem.hint.startswith("Did you mean '")
    assert problem.hint.endswith("_TIMEOUT'?")


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"UPSTREAM": {"REQUEST_TIMEOUT": 0}}, "UPSTREAM.REQUEST_TIMEOUT"),
        ({"UPSTREAM": {"REQUEST_TIMEOUT": "10"}}, "UPSTREAM.REQUEST_TIMEOUT"),
        ({"UPSTREAM": {"TRANSPORT": "carrier-pigeon"}}, "UPSTREAM.TRANSPORT"),
        ({"UPSTREAM": {"INPUT_SAMPLE_RATE": 44}}, "UPSTREAM.INPUT_SAMPLE_RATE"),
        ({"UPSTREAM": {"EVENTS": {"nope": "x"}}}, "UPSTREAM.EVENTS"),
        ({"SANDBOX": {"ENABLED": "yes"}}, "SANDBOX.ENABLED"),
        ({"SANDBOX": {"PATH": "voicehub"}}, "SANDBOX.PATH"),
        ({"SOCKET_PATH": "/ws"}, "SOCKET_PATH"),
        ({"CONNECT_TOKEN_MAX_AGE": True}, "CONNECT_TOKEN_MAX_AGE"),
        ({"MAX_TEXT_LENGTH": -1}, "MAX_TEXT_LENGTH"),
        ({"UPSTREAM": []}, "UPSTREAM"),
    ],
)
def test_bad_values_are_problems_naming_the_key(raw, key):
    (problem,) = problems(raw)
    assert problem.kind == "bad-value"
    assert problem.key == key


@pytest.mark.parametrize(
    "url", ["voicehub.dataqueue.ai", "ftp://voicehub", "https://", "https://x/?a=1", 42]
)
def test_bad_upstream_url_is_a_url_problem(url):
    (problem,) = problems({"UPSTREAM": {"URL": url}})
    assert problem.kind == "bad-url"


def test_setting_that_is_not_a_dict_is_one_problem():
    (problem,) = problems(["UPSTREAM"])
    assert problem.key == "WEBCALL_WIDGET"


def test_every_problem_is_reported_not_only_the_first():
    assert len(problems({"NOPE": 1, "MAX_TEXT_LENGTH": 0, "UPSTREAM": {"URL": "x"}})) == 3


def test_build_refuses_bad_values_with_the_same_words():
    with pytest.raises(ImproperlyConfigured, match="MAX_TEXT_LENGTH"):
        build({"MAX_TEXT_LENGTH": 0}, debug=False)


def test_get_settings_is_rebuilt_when_the_setting_changes():
    before = get_settings()
    with override_settings(WEBCALL_WIDGET={"MAX_TEXT_LENGTH": 12}):
        assert get_settings().max_text_length == 12
    assert get_settings() == before


def test_every_key_is_documented():
    assert all(key.doc for key in DOCS.values())
    assert "UPSTREAM.URL" in DOCS
