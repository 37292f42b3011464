from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from webcall_widget.conf import DOCS, build, get_settings, problems
from webcall_widget.voicehub.events import Transport
from webcall_widget.voicehub.profile import Rejoin


def test_defaults_build_without_problems():
    settings = build({}, debug=True)
    assert settings.upstream.url is None
    assert settings.upstream.uses_sandbox
    assert settings.upstream.transport is Transport.SOCKETIO
    assert settings.upstream.audio.input_rate == 16000
    assert settings.socket_path == "/ws/webcall/"
    assert settings.connect_token_max_age == 60


def test_limit_defaults():
    limits = build({}, debug=False).limits
    assert limits.unconnected_calls_per_client == 2
    assert limits.call_minutes_per_day_per_agent is None  # no budget unless one is set


def test_call_minute_budget_can_be_set():
    raw = {"LIMITS": {"CALL_MINUTES_PER_DAY_PER_AGENT": 600}}
    assert build(raw, debug=False).limits.call_minutes_per_day_per_agent == 600


def test_bad_call_minute_budget_says_none_is_allowed():
    (problem,) = problems({"LIMITS": {"CALL_MINUTES_PER_DAY_PER_AGENT": "600"}})
    assert "or None" in problem.message


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
        ({"LIMITS": {"UNCONNECTED_CALLS_PER_CLIENT": 0}}, "LIMITS.UNCONNECTED_CALLS_PER_CLIENT"),
        (
            {"LIMITS": {"CALL_MINUTES_PER_DAY_PER_AGENT": 0}},
            "LIMITS.CALL_MINUTES_PER_DAY_PER_AGENT",
        ),
        (
            {"LIMITS": {"CALL_MINUTES_PER_DAY_PER_AGENT": 9.5}},
            "LIMITS.CALL_MINUTES_PER_DAY_PER_AGENT",
        ),
        ({"UPSTREAM": []}, "UPSTREAM"),
        ({"HEALTH": {"ENABLED": "yes"}}, "HEALTH.ENABLED"),
        ({"HEALTH": {"CHECK_TIMEOUT": 0}}, "HEALTH.CHECK_TIMEOUT"),
        ({"METRICS": {"TOKEN": 12345678901234567890123456789}}, "METRICS.TOKEN"),
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


def test_webhook_defaults():
    settings = build({}, debug=False)
    assert settings.webhooks.max_body_bytes == 65536
    assert settings.webhooks.analysis_attempts == 5
    assert settings.webhooks.analysis_retry_delay == 2.0
    assert settings.retention_days is None
    assert (settings.sandbox.webhook_url, settings.sandbox.webhook_secret) == (None, "")


@pytest.mark.parametrize(
    "url", ["/webcall/agents/echo/webhook", "https://site.example/webcall/agents/echo/webhook"]
)
def test_sandbox_webhook_url_is_a_path_or_a_url(url):
    assert build({"SANDBOX": {"WEBHOOK_URL": url}}, debug=True).sandbox.webhook_url == url


def test_a_sandbox_webhook_url_that_is_neither_says_what_is_allowed():
    (problem,) = problems({"SANDBOX": {"WEBHOOK_URL": "site.example/hook"}})
    assert problem.kind == "bad-url"
    assert "a path starting with '/'" in problem.message


@pytest.mark.parametrize("days", [0, -1, "30", 1.5])
def test_retention_days_must_be_a_positive_number_of_days(days):
    (problem,) = problems({"RETENTION_DAYS": days})
    assert "or None to keep everything" in problem.message


def test_retention_days_can_be_set():
    assert build({"RETENTION_DAYS": 30}, debug=False).retention_days == 30


def test_calls_wait_20_seconds_for_their_visitor_by_default():
    assert build({}, debug=False).resume_seconds == 20


@pytest.mark.parametrize("seconds", [0, 1, 600])
def test_resume_seconds_may_be_0_to_600(seconds):
    assert build({"RESUME_SECONDS": seconds}, debug=False).resume_seconds == seconds


@pytest.mark.parametrize("seconds", [-1, 601, "20", 2.5, True])
def test_resume_seconds_outside_0_to_600_is_a_problem(seconds):
    (problem,) = problems({"RESUME_SECONDS": seconds})
    assert problem.key == "RESUME_SECONDS"
    assert "from 0 (off) to 600" in problem.message


# audio frames


def test_audio_frames_are_20_ms_on_both_legs_by_default():
    current = build({}, debug=False)
    assert (current.browser_audio.frame_ms, current.upstream.audio.frame_ms) == (20, 20)


def test_the_browser_leg_and_voicehubs_leg_have_their_own_frame_length():
    current = build({"AUDIO_FRAME_MS": 60, "UPSTREAM": {"FRAME_MS": 40}}, debug=False)
    assert (current.browser_audio.frame_ms, current.upstream.audio.frame_ms) == (60, 40)


@pytest.mark.parametrize("ms", [10, 30, "20", True, 20.5])
def test_audio_frame_ms_other_than_20_40_60_is_a_problem(ms):
    (problem,) = problems({"AUDIO_FRAME_MS": ms})
    assert (problem.key, problem.kind) == ("AUDIO_FRAME_MS", "bad-value")
    assert "must be 20, 40 or 60" in problem.message


def test_a_frame_limit_below_one_frame_of_audio_says_how_large_it_must_be():
    raw = {"AUDIO_FRAME_MS": 60, "MAX_FRAME_BYTES": 4096, "UPSTREAM": {"INPUT_SAMPLE_RATE": 48000}}
    (problem,) = problems(raw)
    assert problem.key == "MAX_FRAME_BYTES"
    assert "5760 bytes: 60 ms at 48000 Hz" in problem.message
    assert "at least 5760" in problem.hint


# the upstream protocol profile


def test_the_default_profile_is_the_documented_protocol():
    profile = build({}, debug=False).upstream.profile
    assert profile.socket_path_as.value == "path"
    assert profile.audio_in.event == profile.audio_out.event == "audio.chunk"
    assert profile.visitor_roles == ("user",)
    assert profile.protocol == "webcall_widget.voicehub.protocol.SettingsProtocol"


def test_each_audio_direction_has_its_own_event_shape_and_rate():
    raw = {
        "UPSTREAM": {
            "AUDIO_IN_EVENT": "audio.input",
            "AUDIO_IN_FORMAT": "base64",
            "AUDIO_OUT_FORMAT": "object",
            "AUDIO_OUT_FIELD": "chunk",
            "OUTPUT_SAMPLE_RATE": 24000,
        }
    }
    profile = build(raw, debug=False).upstream.profile
    assert profile.audio_in.describe() == "event 'audio.input', base64 in field 'audio', 16000 Hz"
    assert profile.audio_out.describe() == "event 'audio.chunk', binary in field 'chunk', 24000 Hz"


def test_audio_events_follow_events_audio_chunk_unless_set():
    profile = build(
        {"UPSTREAM": {"EVENTS": {"audio_chunk": "media"}}}, debug=False
    ).upstream.profile
    assert (profile.audio_in.event, profile.audio_out.event) == ("media", "media")


def test_a_call_under_way_is_joined_again_unless_rejoin_is_never():
    assert build({}, debug=False).upstream.profile.rejoin is Rejoin.AUTO
    never = build({"UPSTREAM": {"REJOIN": "never"}}, debug=False).upstream.profile
    assert never.rejoin is Rejoin.NEVER


def test_message_fields_merge_with_the_defaults():
    raw = {"UPSTREAM": {"MESSAGE_FIELDS": {"text": "content", "id": None}}}
    fields = build(raw, debug=False).upstream.profile.message_fields
    assert fields.as_dict() == {"id": None, "role": "role", "text": "content", "final": "final"}


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("SOCKET_PATH_AS", "query", "must be one of 'path', 'namespace', 'url', 'auto'"),
        ("AUDIO_OUT_FORMAT", "wav", "must be one of 'binary', 'object', 'base64'"),
        ("MESSAGE_FIELDS", {"speaker": "role"}, "has unknown part 'speaker'"),
        ("MESSAGE_FIELDS", {"text": None}, "'text' must be a field name"),
        ("VISITOR_ROLES", "user", "must be a non-empty list of role names"),
        ("CONNECT_AUTH", {"key": "{api_key}"}, "uses {api_key}; the placeholders are"),
        ("CONNECT_QUERY", {"n": 1}, "must be a dict of strings to strings"),
        ("MESSAGE_UPDATES", "merge", "must be one of 'replace', 'append'"),
        ("CALL_END", "hangup", "must be one of 'event', 'disconnect', 'either'"),
        ("JOIN_CONFIRMATION", True, "must be one of 'event', 'ack', 'none'"),
        ("REJOIN", "sometimes", "must be one of 'auto', 'never'"),
        ("FRAME_MS", 30, "must be 20, 40 or 60"),
    ],
)
def test_bad_protocol_settings_say_what_is_allowed(key, value, says):
    (problem,) = problems({"UPSTREAM": {key: value}})
    assert problem.kind == "bad-value"
    assert says in problem.message


def test_protocol_settings_that_cannot_work_together_are_one_problem_each():
    raw = {
        "UPSTREAM": {
            "TRANSPORT": "websocket",
            "SOCKET_PATH_AS": "namespace",
            "JOIN_CONFIRMATION": "ack",
        }
    }
    found = problems(raw)
    assert [p.kind for p in found] == ["bad-profile", "bad-profile"]
    assert "a plain WebSocket has no namespaces" in found[0].message
    assert "has no acknowledgements" in found[1].message
    with pytest.raises(ImproperlyConfigured):
        build(raw, debug=False)


def test_health_is_served_and_metrics_are_for_staff_by_default():
    settings = build({}, debug=False)
    assert settings.health.enabled is True
    assert settings.health.check_timeout == 0.5
    assert settings.metrics.token is None


def test_a_metrics_token_can_be_set():
    token = "k" * 43
    assert build({"METRICS": {"TOKEN": token}}, debug=False).metrics.token == token


@pytest.mark.parametrize(
    "token",
    ["", "short-token", "x" * 257, "a token with spaces in it, long enough", "é" * 30],
    ids=["empty", "short", "overlong", "spaces", "not-ascii"],
)
def test_a_metrics_token_that_could_be_guessed_or_not_sent_is_a_problem(token):
    (problem,) = problems({"METRICS": {"TOKEN": token}})
    assert problem.key == "METRICS.TOKEN"
    assert "24 to 256 visible ASCII characters" in problem.message


def test_a_bad_metrics_token_is_never_echoed():
    (problem,) = problems({"METRICS": {"TOKEN": "almost-a-secret"}})
    assert "almost-a-secret" not in problem.message + problem.hint


def test_the_metrics_token_is_not_in_the_settings_repr():
    token = "s3cr3t-" * 6
    assert token not in repr(build({"METRICS": {"TOKEN": token}}, debug=False))
