from __future__ import annotations

import pytest
from django.core.checks import Tags, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from tests.settings import INSTALLED_APPS, MIDDLEWARE


def check_ids() -> list[str]:
    # Only our checks' tag: Django 6.1's model checks need a database connection.
    messages = run_checks(tags=[Tags.compatibility])
    return sorted(m.id for m in messages if m.id.startswith("webcall_widget."))


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
    CHANNEL_LAYERS={"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}},
    CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
)
def test_w002_redis_channel_layer_with_a_per_process_cache():
    assert check_ids() == ["webcall_widget.W002"]


@override_settings(
    CHANNEL_LAYERS={"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}},
    CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache"}},
)
def test_redis_everywhere_is_fine():
    assert check_ids() == []


@override_settings(DEBUG=True, WEBCALL_WIDGET={})
def test_sandbox_upstream_while_debugging_is_fine():
    assert check_ids() == []


@override_settings(
    DEBUG=False, WEBCALL_WIDGET={"UPSTREAM": {"URL": "https://voicehub.dataqueue.ai"}}
)
def test_real_upstream_in_production_is_fine():
    assert check_ids() == []


@pytest.mark.django_db  # Django 6.1's model checks query the database
@override_settings(WEBCALL_WIDGET={"NOPE": True})
def test_checks_are_registered_with_django():
    with pytest.raises(SystemCheckError, match="webcall_widget.E002"):
        call_command("check")


def test_every_check_id_is_in_the_readme():
    from pathlib import Path

    import webcall_widget.checks

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    ids = {
        word
        for word in (webcall_widget.checks.__doc__ or "").split()
        if word.startswith("webcall_widget.")
    }
    assert ids
    assert {i for i in ids if i not in readme} == set()
