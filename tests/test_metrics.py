"""The metrics: what the relay's counting functions record, the gauges read at scrape time,
who may read ``<prefix>/metrics``, and the same site without prometheus_client."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.relay.test_consumer import live_call
from webcall_widget import metrics
from webcall_widget.relay import deadlines, outcomes, process
from webcall_widget.strings import ERRORS
from webcall_widget.voicehub import errors
from webcall_widget.voicehub.events import Mode
from webcall_widget.voicehub.session import ENDED_BY_DISCONNECT

ROOT = Path(__file__).resolve().parent.parent
METRICS = "/webcall/metrics"
TOKEN = "test-token-" + "x" * 32


def value(name: str, **labels: str) -> float:
    assert metrics.REGISTRY is not None
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(response) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


@pytest.fixture
def with_token(settings):
    settings.WEBCALL_WIDGET = {**settings.WEBCALL_WIDGET, "METRICS": {"TOKEN": TOKEN}}


@pytest.fixture
async def staff_client(async_client, django_user_model):
    user = await django_user_model.objects.acreate_user("ops", is_staff=True)
    await async_client.aforce_login(user)
    return async_client


# what the relay's calls count


@pytest.mark.parametrize(
    ("count", "series", "labels", "added"),
    [
        (lambda: metrics.call_started(Mode.WEB_AUDIO), "calls_started", {"mode": "WebAudio"}, 1),
        (
            lambda: metrics.call_ended("text", "idle-timeout"),
            "calls_ended",
            {"mode": "text", "reason": "idle-timeout"},
            1,
        ),
        (
            lambda: metrics.call_ended("text", "The customer said goodbye at 12:03 (call 8f2e)"),
            "calls_ended",
            {"mode": "text", "reason": "other"},
            1,
        ),
        (lambda: metrics.refused("agent_busy"), "refusals", {"code": "agent_busy"}, 1),
        (
            lambda: metrics.upstream_error("upstream_lost"),
            "upstream_errors",
            {"code": "upstream_lost"},
            1,
        ),
        (
            lambda: metrics.upstream_error("E_VH_INTERNAL_4711"),
            "upstream_errors",
            {"code": "other"},
            1,
        ),
        (
            lambda: metrics.audio_dropped("to_visitor", 640),
            "audio_dropped_bytes",
            {"direction": "to_visitor"},
            640,
        ),
        (lambda: metrics.moved("adopted"), "calls_moved", {"how": "adopted"}, 1),
    ],
    ids=[
        "a started call, by mode",
        "an ended call, by mode and reason",
        "an end reason in VoiceHub's own words, as other",
        "a refusal, by its error code",
        "an upstream error, by its code",
        "an upstream error code the app does not know, as other",
        "dropped audio, in bytes by direction",
        "a move between processes, by how",
    ],
)
def test_each_event_is_counted_in_its_series(count, series, labels, added):
    name = f"webcall_{series}_total"
    before = value(name, **labels)
    count()
    assert value(name, **labels) == before + added


def test_frame_latency_is_told_apart_below_a_millisecond():
    below = value("webcall_frame_latency_seconds_bucket", le="0.00025")
    within = value("webcall_frame_latency_seconds_bucket", le="0.0005")
    metrics.frame_latency(0.0003)
    assert value("webcall_frame_latency_seconds_bucket", le="0.00025") == below
    assert value("webcall_frame_latency_seconds_bucket", le="0.0005") == within + 1


def test_latency_buckets_reach_past_100_ms():
    assert metrics.LATENCY_BUCKETS[0] < 0.001 and metrics.LATENCY_BUCKETS[-1] > 0.1


def test_bad_values_are_not_counted_and_do_not_raise():
    before = value("webcall_audio_dropped_bytes_total", direction="to_voicehub")
    metrics.audio_dropped("to_voicehub", -5)
    metrics.frame_latency(float("nan"))
    assert value("webcall_audio_dropped_bytes_total", direction="to_voicehub") == before


# the labels' values stay the app's own


def test_the_modes_are_voicehub_s_modes():
    assert {m.value for m in Mode} == metrics.MODES


def test_every_visitor_error_code_is_a_known_label():
    assert set(ERRORS) <= metrics.ERROR_CODES


def test_every_voicehub_error_code_is_a_known_label():
    codes = {cls.code for cls in _subclasses(errors.VoiceHubError)}
    assert codes <= metrics.ERROR_CODES


def test_every_end_reason_the_relay_gives_is_a_known_label():
    reasons = {
        deadlines.MAX_DURATION,
        deadlines.BUDGET_EXHAUSTED,
        deadlines.IDLE_TIMEOUT,
        deadlines.VISITOR_GONE,
        outcomes.server_stopped().reason,
        outcomes.relay_error().reason,
        outcomes.relay_lost("x").reason,
        ENDED_BY_DISCONNECT,
        *(outcomes.upstream_failed(cls("x")).reason for cls in _subclasses(errors.VoiceHubError)),
    }
    assert reasons <= metrics.END_REASONS


@pytest.mark.parametrize(
    ("function", "known"),
    [
        ("moved", metrics.MOVES),
        ("refused", metrics.ERROR_CODES),
        ("audio_dropped", metrics.DIRECTIONS),
        ("upstream_error", metrics.ERROR_CODES),
    ],
)
def test_every_value_the_relay_counts_with_is_a_known_label(function, known):
    """Read from the relay's source: a new value there fails here until it is named."""
    given = set()
    for path in (ROOT / "webcall_widget").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "metrics"
                and node.func.attr == function
                and node.args
            ):
                given |= {
                    c.value
                    for c in ast.walk(node.args[0])
                    if isinstance(c, ast.Constant) and isinstance(c.value, str)
                }
    assert given <= known


def _subclasses(cls: type[errors.VoiceHubError]) -> set[type[errors.VoiceHubError]]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _subclasses(sub)
    return found


# the endpoint


async def test_anonymous_scrapes_are_refused_403(async_client):
    response = await async_client.get(METRICS)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.django_db(transaction=True)
async def test_a_staff_user_reads_the_metrics(staff_client):
    response = await staff_client.get(METRICS)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert ("webcall_voice_call_capacity", ()) in scraped(response)


@pytest.mark.django_db(transaction=True)
async def test_a_user_who_is_not_staff_is_refused(async_client, django_user_model):
    user = await django_user_model.objects.acreate_user("visitor")
    await async_client.aforce_login(user)
    response = await async_client.get(METRICS)
    assert response.status_code == 403


async def test_the_token_reads_the_metrics(with_token, async_client):
    response = await async_client.get(METRICS, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200


async def test_the_bearer_scheme_is_read_in_any_case(with_token, async_client):
    response = await async_client.get(METRICS, headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN}x",
        "Bearer ",
        "Bearer",
        f"Basic {TOKEN}",
        TOKEN,
        f"Bearer {TOKEN}{' ' * 300}",
        "Bearer " + "x" * 5000,
    ],
    ids=["one-short", "one-long", "empty", "no-token", "basic", "no-scheme", "padded", "overlong"],
)
async def test_anything_but_the_token_is_refused_like_no_token(
    with_token, async_client, authorization
):
    anonymous = await async_client.get(METRICS)
    response = await async_client.get(METRICS, headers={"Authorization": authorization})
    assert response.status_code == 403
    assert response.content == anonymous.content


async def test_a_token_sent_when_none_is_set_is_refused_like_a_wrong_one(async_client, settings):
    wrong = {"Authorization": "Bearer not-the-token-" + "y" * 30}
    without = await async_client.get(METRICS, headers=wrong)
    settings.WEBCALL_WIDGET = {**settings.WEBCALL_WIDGET, "METRICS": {"TOKEN": TOKEN}}
    with_one = await async_client.get(METRICS, headers=wrong)
    assert (without.status_code, without.content) == (with_one.status_code, with_one.content)


@pytest.mark.parametrize("method", ["post", "put", "delete"])
async def test_other_methods_get_405(with_token, async_client, method):
    response = await getattr(async_client, method)(
        METRICS, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_openmetrics_is_served_to_a_scraper_that_asks_for_it(with_token, async_client):
    response = await async_client.get(
        METRICS,
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Accept": "application/openmetrics-text; version=1.0.0",
        },
    )
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.rstrip().endswith(b"# EOF")


# the gauges, read when scraped


@pytest.mark.django_db(transaction=True)
async def test_live_calls_are_counted_by_mode_when_scraped(
    sandbox, with_token, agent, async_client, open_socket
):
    await live_call(async_client, open_socket, agent, "text")
    await live_call(async_client, open_socket, agent, "WebAudio")
    response = await async_client.get(METRICS, headers={"Authorization": f"Bearer {TOKEN}"})
    samples = scraped(response)
    assert samples["webcall_live_calls", (("mode", "text"),)] == 1
    assert samples["webcall_live_calls", (("mode", "WebAudio"),)] == 1
    assert samples["webcall_live_calls", (("mode", "TextAudio"),)] == 0
    assert samples["webcall_voice_calls", ()] == 1
    await process.current.stop_housekeeping()


async def test_the_capacity_gauge_is_the_setting(with_token, async_client, settings):
    settings.WEBCALL_WIDGET = {**settings.WEBCALL_WIDGET, "LIMITS": {"VOICE_CALLS_PER_PROCESS": 9}}
    response = await async_client.get(METRICS, headers={"Authorization": f"Bearer {TOKEN}"})
    assert scraped(response)["webcall_voice_call_capacity", ()] == 9


async def test_a_draining_process_says_so(with_token, async_client):
    process.current.draining = True
    try:
        response = await async_client.get(METRICS, headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        process.current.draining = False
    assert scraped(response)["webcall_draining", ()] == 1


async def test_the_scrape_names_the_process_as_calls_record_their_owner(with_token, async_client):
    response = await async_client.get(METRICS, headers={"Authorization": f"Bearer {TOKEN}"})
    info = scraped(response)["webcall_relay_process_info", (("process", process.current.id),)]
    assert info == 1


async def test_the_scrape_carries_the_process_s_cpu_and_memory(with_token, async_client):
    response = await async_client.get(METRICS, headers={"Authorization": f"Bearer {TOKEN}"})
    names = {name for name, _ in scraped(response)}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names


# the same site without prometheus_client

WITHOUT_PROMETHEUS = """
import json, sys
sys.modules["prometheus_client"] = None  # what Python finds when the package is not installed
import django
django.setup()
from django.core.checks import Tags, run_checks
from django.test import Client, override_settings
from webcall_widget import metrics

returned = [
    metrics.call_started("text"),
    metrics.call_ended("text", "visitor-ended"),
    metrics.refused("agent_busy"),
    metrics.audio_dropped("to_visitor", 640),
    metrics.upstream_error("upstream_lost"),
    metrics.moved("adopted"),
    metrics.frame_latency(0.001),
]
token = sys.argv[1]
site = {"UPSTREAM": {"URL": "http://voicehub.invalid"}, "METRICS": {"TOKEN": token}}
with override_settings(WEBCALL_WIDGET=site):
    checks = run_checks(tags=[Tags.compatibility])
    response = Client().get("/webcall/metrics", headers={"Authorization": "Bearer " + token})
print(json.dumps({
    "available": metrics.available(),
    "registry": repr(metrics.REGISTRY),
    "returned": returned,
    "checks": sorted(m.id for m in checks if m.id.startswith("webcall_widget.")),
    "status": response.status_code,
    "body": response.json(),
}))
"""


@pytest.fixture(scope="module")
def without_prometheus() -> dict:
    """What the site does in a process where prometheus_client cannot be imported."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_PROMETHEUS, TOKEN],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_without_prometheus_client_the_counting_functions_do_nothing(without_prometheus):
    assert without_prometheus["available"] is False
    assert without_prometheus["registry"] == "None"
    assert without_prometheus["returned"] == [None] * 7


def test_without_prometheus_client_the_endpoint_answers_501_naming_the_extra(without_prometheus):
    assert without_prometheus["status"] == 501
    error = without_prometheus["body"]["error"]
    assert error["code"] == "metrics_not_installed"
    assert "django-webcall-widget[metrics]" in error["message"]


def test_w005_a_token_is_set_but_prometheus_client_is_missing(without_prometheus):
    assert without_prometheus["checks"] == ["webcall_widget.W005"]
