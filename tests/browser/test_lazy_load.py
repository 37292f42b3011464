"""A page view loads the launcher alone; the rest of the widget comes with the first intent."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.widget import TIMEOUT, WidgetOnPage
from webcall_widget.assets import MODULES

# The app's modules come from the agent's versioned URL, the entry first.
APP = re.compile(r"/webcall/agents/echo/widget/[0-9a-f]{16}/widget-app\.js$")
MODULE = re.compile(r"/webcall/agents/echo/widget/[0-9a-f]{16}/([\w-]+)\.js$")
PANEL_CSS = "/static/webcall_widget/widget.css"


# The API hands out the Widget once the app has mounted it, the loader's Shell before.
MOUNTED = "() => window.WebcallWidget.get() !== window.WebcallWidget._shells[0]"


def apps(urls: list[str]) -> list[str]:
    return [url for url in urls if APP.search(url)]


def modules(urls: list[str]) -> set[str]:
    return {match[1] for url in urls if (match := MODULE.search(url))}


def requested(page) -> list[str]:
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    return urls


def loaded_on_a_page_view(live_site, page) -> tuple[WidgetOnPage, list[str]]:
    urls = requested(page)
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    page.wait_for_load_state("networkidle")
    return widget, urls


def test_a_page_view_loads_the_launcher_but_not_the_app(live_site, page):
    _, urls = loaded_on_a_page_view(live_site, page)
    assert any(url.endswith("/static/webcall_widget/widget.js") for url in urls)
    assert any(url.endswith("/static/webcall_widget/launcher.css") for url in urls)
    assert not modules(urls)
    assert not [url for url in urls if url.endswith((PANEL_CSS, "audio-worklet.js"))]


def test_the_pointer_over_the_launcher_loads_the_app(live_site, page):
    widget, urls = loaded_on_a_page_view(live_site, page)
    widget.launcher.hover()
    page.wait_for_function(MOUNTED)
    assert modules(urls) == set(MODULES)
    assert any(url.endswith(PANEL_CSS) for url in urls)
    expect(widget.panel).to_be_hidden()  # loaded, not opened


def test_focus_on_the_launcher_loads_the_app(live_site, page):
    widget, urls = loaded_on_a_page_view(live_site, page)
    widget.launcher.focus()
    page.wait_for_function(MOUNTED)
    assert apps(urls)


def test_every_module_is_asked_for_at_once_not_one_import_after_another(live_site, page):
    held: list = []
    widget, urls = loaded_on_a_page_view(live_site, page)
    page.route(APP, lambda route: held.append(route))
    widget.launcher.hover()
    # The entry is held back, so only the launcher can ask for the modules the entry imports.
    for _ in range(TIMEOUT // 50):
        if modules(urls) == set(MODULES):
            break
        page.wait_for_timeout(50)
    assert modules(urls) == set(MODULES)
    assert held, "the entry was asked for"
    held[0].continue_()
    page.wait_for_function(MOUNTED)


def test_a_click_before_the_app_arrived_opens_the_panel_when_it_does(live_site, page):
    held: list = []
    widget, _ = loaded_on_a_page_view(live_site, page)
    page.route(APP, lambda route: held.append(route))
    widget.launcher.dispatch_event("click")  # no hover first: the click itself is the intent
    page.wait_for_timeout(300)
    expect(widget.panel).to_have_count(0)  # the app is still on its way
    held[0].continue_()
    expect(widget.panel).to_be_visible(timeout=TIMEOUT)
    expect(widget.launcher).to_have_attribute("aria-expanded", "true")


def test_a_conversation_in_progress_loads_the_app_with_the_page(live_site, page):
    widget, _ = loaded_on_a_page_view(live_site, page)
    widget.start_text_chat()
    urls = requested(page)
    page.reload()
    widget.expect_state("live")
    assert apps(urls)
    expect(widget.panel).to_be_visible()
