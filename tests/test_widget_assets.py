"""What the widget's config tells its JavaScript, and what the widget weighs on a page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from benchmarks import page_weight
from webcall_widget.relay.protocol import CloseCode

STATIC = Path(__file__).resolve().parent.parent / "webcall_widget" / "static" / "webcall_widget"
SCRIPTS = ("widget.js", "widget-app.js")


def config(client, slug: str) -> dict:
    return client.get(f"/webcall/agents/{slug}/config").json()


def test_config_names_every_close_code_the_relay_sends(agent, client):
    close_codes = config(client, agent.slug)["relay"]["closeCodes"]
    sent = {str(code.value) for code in CloseCode if code is not CloseCode.NORMAL}
    assert set(close_codes) == sent
    assert close_codes[str(CloseCode.RESTARTING_4XXX.value)] == "restarting"
    assert close_codes[str(CloseCode.TAKEN_OVER.value)] == "taken_over"


def test_a_normal_close_is_not_an_error(agent, client):
    assert str(CloseCode.NORMAL.value) not in config(client, agent.slug)["relay"]["closeCodes"]


def test_the_socket_prefix_is_what_create_call_hands_out_before_the_token(sandbox, agent, client):
    prefix = config(client, agent.slug)["relay"]["socket"]
    response = client.post(
        f"/webcall/agents/{agent.slug}/calls",
        data=json.dumps({"mode": "text"}),
        content_type="application/json",
    )
    socket = response.json()["socket"]
    assert socket.startswith(prefix)
    assert re.fullmatch(r"[^/]+/", socket.removeprefix(prefix))


def test_config_names_the_app_and_both_stylesheets(agent, client):
    assets = config(client, agent.slug)["assets"]
    assert assets["app"].endswith("/static/webcall_widget/widget-app.js")
    assert assets["launcherCss"].endswith("/static/webcall_widget/launcher.css")
    assert assets["css"].endswith("/static/webcall_widget/widget.css")


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_widget_script_hard_codes_no_close_code(name):
    source = (STATIC / name).read_text()
    assert not re.findall(r"\b4[45][0-9]{2}\b", source)
    codes = {str(code.value) for code in CloseCode if code is not CloseCode.NORMAL}
    assert not codes & set(re.findall(r"\b[0-9]{4}\b", source))


def test_a_page_view_downloads_at_most_4_kb_gzipped():
    assert sum(map(page_weight.gzipped, page_weight.PAGE_VIEW)) <= page_weight.PAGE_VIEW_BUDGET


def test_the_whole_widget_is_at_most_20_kb_gzipped():
    files = page_weight.PAGE_VIEW + page_weight.FIRST_OPEN
    assert sum(map(page_weight.gzipped, files)) <= page_weight.TOTAL_BUDGET
