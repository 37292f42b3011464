from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import Tags, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from tests.settings import INSTALLED_APPS, MIDDLEWARE
from webcall_widget.channel_layers import redis_channel_layer


def check_ids() -> list[str]:
    # Only our checks' tag: Django 6.1's model checks need a database connection.
    messages = run_checks(tags=[Tags.compatibility])
    return sorted(m.id for m in messages if m.id and m.id.startswith("webcall_widget."))


def test_test_settings_pass():
    assert check_ids() == []


@override_settings(WEBCALL_WIDGET={"MAX_TEXT_LENGTH": "long"})
def test_e001_bad_value():
    assert check_ids() == ["webcall_widget.E001"]


@override_settings(WEBCALL_WIDGET={"UPSTREAM_URL": "https://voicehub.dataqueue.ai"})
def test_e002_unknown_key():
    assert check_ids() == ["webcall_widget.E002"]


@override_settings(WEBCALL_WIDGET={"UPSTREAM": {"URL": "voicehub.dataqueue.ai"}})
def test_e003_bad_upstream_url():
    assert check_ids() == ["webcall_widget.E003"]


@override_settings(WEBCALL_WIDGET={"SOCKET_URL": "https://ws.example.com"})
def test_e003_socket_url_must_be_ws():
    assert check_ids() == ["webcall_widget.E003"]


@override_settings(WEBCALL_WIDGET={"SANDBOX": {"WEBHOOK_URL": "webcall/agents/echo/webhook"}})
def test_e003_sandbox_webhook_url_must_be_a_url_or_a_path():
    assert check_ids() == ["webcall_widget.E003"]


@override_settings(WEBCALL_WIDGET={"WEBHOOKS": {"ANALYSIS_ATTEMPTS": 0}})
def test_e001_bad_webhook_setting():
    assert check_ids() == ["webcall_widget.E001"]


@override_settings(INSTALLED_APPS=[a for a in INSTALLED_APPS if a not in ("channels", "daphne")])
def test_e004_channels_missing():
    assert check_ids() == ["webcall_widget.E004"]


@override_settings(ASGI_APPLICATION=None)
def test_e004_asgi_application_missing():
    assert check_ids() == ["webcall_widget.E004"]


@override_settings(MIDDLEWARE=[m for m in MIDDLEWARE if "corsheaders" not in m])
def test_e005_cors_middleware_missing():
    assert check_ids() == ["webcall_widget.E005"]


@override_settings(DEBUG=False, WEBCALL_WIDGET={})
def test_e006_no_upstream_in_production():
    assert check_ids() == ["webcall_widget.E006"]


@override_settings(DEBUG=False, WEBCALL_WIDGET={"SANDBOX": {"ENABLED": True}})
def test_w001_sandbox_upstream_in_production():
    assert check_ids() == ["webcall_widget.W001"]


@override_settings(
    CHANNEL_LAYERS={"default": redis_channel_layer("redis://127.0.0.1:6379/0")},
    CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
)
def test_e010_redis_channel_layer_with_a_per_process_cache():
    assert check_ids() == ["webcall_widget.E010"]


@override_settings(
    CHANNEL_LAYERS={"default": redis_channel_layer("redis://127.0.0.1:6379/0")},
    CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache"}},
)
def test_redis_everywhere_is_fine():
    assert check_ids() == []


REDIS = "channels_redis.core.RedisChannelLayer"


def layer_check_ids(hosts: list[Any] | None) -> list[str]:
    config = {} if hosts is None else {"CONFIG": {"hosts": hosts}}
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache"}}
    with override_settings(
        CHANNEL_LAYERS={"default": {"BACKEND": REDIS, **config}}, CACHES=caches
    ):
        return check_ids()


@pytest.mark.parametrize(
    "hosts",
    [
        [{"address": "redis://127.0.0.1:6379/0", "socket_timeout": 5}],
        ["redis://127.0.0.1:6379/0?socket_timeout=2"],
    ],
)
def test_e007_redis_connections_set_to_time_out_with_the_blocking_receive(hosts):
    assert layer_check_ids(hosts) == ["webcall_widget.E007"]


def redis_default_timeout() -> float | None:
    """The socket timeout redis-py itself gives a connection that asks for none: 5 s from
    redis-py 8 on, none before."""
    from redis import asyncio as aioredis

    timeout = aioredis.Redis().connection_pool.connection_kwargs.get("socket_timeout")
    return None if timeout is None else float(timeout)


@pytest.mark.parametrize(
    "hosts",
    [
        None,  # channels_redis's default host
        ["redis://127.0.0.1:6379/0"],
        [("127.0.0.1", 6379)],
        [{"address": "redis://127.0.0.1:6379/0"}],
    ],
)
def test_e007_hosts_that_take_redis_pys_default_timeout_when_it_is_too_short(hosts):
    default = redis_default_timeout()
    expected = ["webcall_widget.E007"] if default is not None and default <= 5 else []
    assert layer_check_ids(hosts) == expected


@pytest.mark.parametrize(
    "host",
    [
        {"address": "redis://127.0.0.1:6379/0", "socket_timeout": 30},
        {"host": "127.0.0.1", "port": 6379, "socket_timeout": None},
        "redis://127.0.0.1:6379/0?socket_timeout=30",
    ],
)
def test_redis_connections_that_outlast_the_blocking_receive_are_fine(host):
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache"}}
    layers = {"default": {"BACKEND": REDIS, "CONFIG": {"hosts": [host]}}}
    with override_settings(CHANNEL_LAYERS=layers, CACHES=caches):
        assert check_ids() == []


@override_settings(
    WEBCALL_WIDGET={
        "UPSTREAM": {"URL": "https://voicehub.dataqueue.ai"},
        "LIMITS": {"UNCONNECTED_CALLS_PER_CLIENT": 20, "CONCURRENT_CALLS_PER_AGENT": 20},
    }
)
def test_w003_one_client_may_hold_every_line_unconnected():
    assert check_ids() == ["webcall_widget.W003"]


@override_settings(
    WEBCALL_WIDGET={
        "UPSTREAM": {"URL": "https://voicehub.dataqueue.ai"},
        "LIMITS": {"CALL_MINUTES_PER_DAY_PER_AGENT": 10, "MAX_CALL_SECONDS": 900},
    }
)
def test_w003_one_call_may_use_up_the_day_s_minutes():
    messages = run_checks(tags=[Tags.compatibility])
    (warning,) = [m for m in messages if m.id == "webcall_widget.W003"]
    assert "CALL_MINUTES_PER_DAY_PER_AGENT" in warning.msg and warning.hint


@override_settings(
    WEBCALL_WIDGET={
        "UPSTREAM": {"URL": "https://voicehub.dataqueue.ai"},
        "LIMITS": {"CALL_MINUTES_PER_DAY_PER_AGENT": 600, "UNCONNECTED_CALLS_PER_CLIENT": 3},
    }
)
def test_sensible_limits_are_fine():
    assert check_ids() == []


@override_settings(DEBUG=True, WEBCALL_WIDGET={})
def test_sandbox_upstream_while_debugging_is_fine():
    assert check_ids() == []


@override_settings(
    DEBUG=False, WEBCALL_WIDGET={"UPSTREAM": {"URL": "https://voicehub.dataqueue.ai"}}
)
def test_real_upstream_in_production_is_fine():
    assert check_ids() == []


@override_settings(
    WEBCALL_WIDGET={"UPSTREAM": {"URL": "http://voicehub.invalid"}, "METRICS": {"TOKEN": "t" * 32}}
)
def test_a_metrics_token_with_prometheus_client_installed_is_fine():
    assert check_ids() == []


@pytest.mark.django_db  # Django 6.1's model checks query the database
@override_settings(WEBCALL_WIDGET={"NOPE": True})
def test_checks_are_registered_with_django():
    with pytest.raises(SystemCheckError, match="webcall_widget.E002"):
        call_command("check")


def test_every_check_id_is_on_the_checks_page():
    from pathlib import Path

    import webcall_widget.checks

    readme = (Path(__file__).parent.parent / "docs" / "checks.md").read_text()
    ids = {
        word
        for word in (webcall_widget.checks.__doc__ or "").split()
        if word.startswith("webcall_widget.")
    }
    assert ids
    assert {i for i in ids if i not in readme} == set()


UPSTREAM = {"UPSTREAM": {"URL": "https://voicehub.dataqueue.ai"}}


@override_settings(WEBCALL_WIDGET={**UPSTREAM, "MAX_FRAME_BYTES": 1024 * 1024})
def test_w004_frame_limit_not_below_daphnes_default():
    assert check_ids() == ["webcall_widget.W004"]


@override_settings(
    WEBCALL_WIDGET={**UPSTREAM, "MAX_FRAME_BYTES": 64 * 1024},
    DAPHNE_WEBSOCKET_MAX_FRAME_SIZE=64 * 1024,
)
def test_w004_frame_limit_not_below_daphnes_configured_frame_size():
    assert check_ids() == ["webcall_widget.W004"]


@override_settings(
    WEBCALL_WIDGET={**UPSTREAM, "MAX_FRAME_BYTES": 2 * 1024 * 1024},
    DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE=4 * 1024 * 1024,
    DAPHNE_WEBSOCKET_MAX_FRAME_SIZE=4 * 1024 * 1024,
)
def test_frame_limit_below_a_raised_daphne_limit_is_fine():
    assert check_ids() == []


@override_settings(
    WEBCALL_WIDGET={
        "UPSTREAM": {
            **UPSTREAM["UPSTREAM"],
            "TRANSPORT": "websocket",
            "CONNECT_AUTH": {"callId": "{callId}"},
        }
    }
)
def test_e008_protocol_settings_that_contradict_each_other():
    assert check_ids() == ["webcall_widget.E008"]


@override_settings(
    WEBCALL_WIDGET={"UPSTREAM": {**UPSTREAM["UPSTREAM"], "PROTOCOL": "myproject.nowhere.Protocol"}}
)
def test_e008_protocol_class_that_cannot_be_imported():
    assert check_ids() == ["webcall_widget.E008"]


@override_settings(
    WEBCALL_WIDGET={
        "UPSTREAM": {
            **UPSTREAM["UPSTREAM"],
            "CONNECT_HEADERS": {"x-key": "sk-123456789"},
            "CONNECT_QUERY": {"k": "{key}"},
        }
    }
)
def test_e001_connection_templates_are_never_echoed():
    """A key pasted into a template (instead of {apiKey}) stays out of the check's output."""
    messages = [m for m in run_checks(tags=[Tags.compatibility]) if m.id == "webcall_widget.E001"]
    assert len(messages) == 1
    assert "{key}" in messages[0].msg and "{apiKey}" in messages[0].msg
    assert "sk-123456789" not in str(messages)
