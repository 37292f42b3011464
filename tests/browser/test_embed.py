"""Embedding: the plain <script> tag on another origin, a strict CSP page, and no secrets."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.pages import page_with, static_page
from tests.browser.widget import TIMEOUT, WidgetOnPage
from tests.servers import ServerThread
from webcall_widget.embed import script_tag
from webcall_widget.models import Agent
from webcall_widget.sandbox.config import SANDBOX_API_KEY

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def other_site(live_site) -> Iterator[ServerThread]:
    snippet = script_tag("echo", base_url=live_site.url)
    with ServerThread(static_page(page_with(snippet)), name="other-site") as server:
        yield server


def test_plain_script_on_another_origin_talks_to_an_agent_that_lists_it(
    live_site, other_site, page
):
    Agent.objects.filter(slug="echo").update(allowed_origins=other_site.url)
    Agent.objects.get(slug="echo").save()  # refresh the cached origin list
    page.goto(other_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.start_text_chat()
    widget.say("from another site")
    widget.expect_agent_reply("You said: from another site")
    call = Agent.objects.get(slug="echo").calls.get()
    assert call.origin == other_site.url


@contextlib.contextmanager
def site_the_agent_allows(html: str, headers: dict[str, str] | None = None) -> Iterator[str]:
    """Another site serving ``html``, whose origin the echo agent allows: its URL."""
    with ServerThread(static_page(html, headers), name="allowed-site") as site:
        agent = Agent.objects.get(slug="echo")
        agent.allowed_origins = site.url
        agent.save()
        yield site.url


def test_plain_script_naming_only_the_server_and_slug_works(live_site, page):
    Agent.objects.get(slug="echo").save()
    snippet = (ROOT / "docs" / "examples" / "embed.html").read_text()  # as the docs show it
    snippet = snippet.replace("https://django.example", live_site.url)
    snippet = snippet.replace('data-agent="slug"', 'data-agent="echo"')
    with site_the_agent_allows(page_with(snippet)) as site:
        page.goto(site + "/")
        widget = WidgetOnPage(page).wait_loaded()
        widget.start_text_chat()


def test_origin_not_listed_gets_no_widget_and_a_console_hint(live_site, other_site, page):
    # The widget gives up with this hint, before it would build anything.
    with page.expect_console_message(lambda m: "allowed origins" in m.text):
        page.goto(other_site.url + "/")
    expect(page.locator("webcall-widget .launcher")).to_have_count(0)


NONCE = "pinned-for-the-test"


@pytest.mark.parametrize(
    "script_src",
    [f"'nonce-{NONCE}'", f"'nonce-{NONCE}' 'strict-dynamic'"],
    ids=["nonce only", "nonce and strict-dynamic"],
)
def test_another_origin_with_a_nonce_only_csp_imports_the_modules_without_violations(
    live_site, page, script_src
):
    """The page allows scripts by nonce alone, not by host: the modules the nonced launcher
    imports (from the widget's server, in CORS mode) pass because the nonce goes with them."""
    server = live_site.url
    policy = (
        f"default-src 'none'; script-src {script_src}; style-src {server}; "
        f"connect-src {server} {live_site.server.ws_url}; img-src {server} data:; base-uri 'none'"
    )
    snippet = script_tag("echo", base_url=server, nonce=NONCE)
    with site_the_agent_allows(page_with(snippet), {"Content-Security-Policy": policy}) as site:
        page.goto(site + "/")
        widget = WidgetOnPage(page).wait_loaded()
        widget.start_text_chat()
        widget.say("nonce")
        widget.expect_agent_reply("You said: nonce")
    assert page.probe.csp_violations() == []


def test_a_module_that_cannot_be_loaded_leaves_the_launcher_and_a_console_warning(live_site, page):
    page.route(re.compile(r"/widget/[0-9a-f]{16}/voice\.js$"), lambda route: route.abort())
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    with page.expect_console_message(lambda m: "WebcallWidget (echo)" in m.text, timeout=TIMEOUT):
        widget.launcher.hover()
    expect(widget.panel).to_have_count(0)
    expect(widget.launcher).to_be_visible()


def test_api_key_is_in_no_page_response_or_socket_frame(live_site, page):
    seen: list[str] = []

    def on_response(response):
        # Redirects and aborted loads have no body to read.
        with contextlib.suppress(Exception):
            seen.append(response.text())

    def on_socket(ws):
        ws.on("framereceived", lambda payload: seen.append(str(payload)))
        ws.on("framesent", lambda payload: seen.append(str(payload)))

    page.on("response", on_response)
    page.on("websocket", on_socket)
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.start_text_chat()
    widget.say("is the key anywhere?")
    widget.expect_agent_reply("You said: is the key anywhere?")
    seen.append(page.content())
    seen.append(json.dumps(page.evaluate("() => Object.keys(window)")))
    assert any("You said: is the key anywhere?" in text for text in seen)  # frames were seen
    assert not [text for text in seen if SANDBOX_API_KEY in text]
    assert not [text for text in seen if "echo-agent" in text]  # nor the VoiceHub agent id
