"""What the widget's config tells its JavaScript, and what the widget weighs on a page."""

from __future__ import annotations

import json
import re

import pytest

from benchmarks import page_weight
from webcall_widget.assets import MODULES, STATIC
from webcall_widget.relay.protocol import CloseCode

SCRIPTS = ("widget.js", *(f"{name}.js" for name in MODULES))
# What each of the app's modules may import: dependencies run one way, the view on the rest.
IMPORTS = {
    "widget-app.js": {"connection.js", "panel.js", "voice.js"},
    "panel.js": {"rich-text.js"},
    "rich-text.js": set(),
    "voice.js": set(),
    "connection.js": set(),
}
IMPORT = re.compile(r'^import\s[^;]*?\sfrom\s"\./([\w-]+\.js)"', re.MULTILINE)
# The browser as a global: the connection gets what it uses of it through its env.
BROWSER_GLOBAL = re.compile(
    r"(?<![.\w])(window|document|navigator|sessionStorage|localStorage|location|WebSocket|fetch"
    r"|addEventListener|customElements|HTMLElement)\b"
)


def config(client, slug: str) -> dict:
    return client.get(f"/webcall/agents/{slug}/config").json()


def test_config_names_every_close_code_the_relay_sends(agent, client):
    close_codes = config(client, agent.slug)["relay"]["closeCodes"]
    failures = set(CloseCode) - {CloseCode.NORMAL, CloseCode.MOVING}
    assert set(close_codes) == {str(code.value) for code in failures}
    assert close_codes[str(CloseCode.RESTARTING_4XXX.value)] == "restarting"
    assert close_codes[str(CloseCode.TAKEN_OVER.value)] == "taken_over"


def test_a_normal_close_is_not_an_error(agent, client):
    assert str(CloseCode.NORMAL.value) not in config(client, agent.slug)["relay"]["closeCodes"]


def test_moving_to_another_process_is_not_an_error_the_widget_resumes(agent, client):
    assert str(CloseCode.MOVING.value) not in config(client, agent.slug)["relay"]["closeCodes"]


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


def test_config_names_the_app_its_modules_and_both_stylesheets(agent, client):
    assets = config(client, agent.slug)["assets"]
    assert assets["app"].endswith("/widget-app.js")
    assert [url.rsplit("/", 1)[1] for url in assets["modules"]] == [
        f"{name}.js" for name in MODULES[1:]
    ]
    assert assets["launcherCss"].endswith("/static/webcall_widget/launcher.css")
    assert assets["css"].endswith("/static/webcall_widget/widget.css")


def imports(name: str) -> set[str]:
    return set(IMPORT.findall((STATIC / name).read_text()))


@pytest.mark.parametrize("name", IMPORTS)
def test_a_module_imports_only_what_its_layer_may(name):
    assert imports(name) <= IMPORTS[name]


def test_the_config_lists_the_entry_and_every_module_it_imports():
    reached, todo = set(), ["widget-app.js"]
    while todo:
        name = todo.pop()
        reached.add(name)
        todo.extend(imports(name) - reached)
    assert reached == {f"{name}.js" for name in MODULES}
    assert MODULES[0] == "widget-app"


def test_every_shipped_script_is_an_app_module_the_launcher_or_the_worklet():
    shipped = {path.name for path in STATIC.glob("*.js")}
    assert shipped == {*SCRIPTS, "audio-worklet.js"}


def test_every_file_the_widget_ships_is_weighed():
    weighed = set(page_weight.PAGE_VIEW + page_weight.FIRST_OPEN)
    assert {path.name for path in STATIC.iterdir()} - weighed == {"admin.css"}


def test_the_connection_reaches_the_browser_only_through_its_env():
    source = (STATIC / "connection.js").read_text()
    code = "\n".join(line.split("//")[0] for line in source.splitlines())
    assert not BROWSER_GLOBAL.findall(code)


def test_the_import_rule_sees_an_import():
    assert imports("widget-app.js") == IMPORTS["widget-app.js"]


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
