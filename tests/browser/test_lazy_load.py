"""A page view loads the launcher alone; the rest of the widget comes with the first intent."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.widget import TIMEOUT, WidgetOnPage

APP = "/static/webcall_widget/widget-app.js"
PANEL_CSS = "/static/webcall_widget/widget.css"


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
    assert not [url for url in urls if url.endswith((APP, PANEL_CSS, "audio-worklet.js"))]


def test_the_pointer_over_the_launcher_loads_the_app(live_site, page):
    widget, urls = loaded_on_a_page_view(live_site, page)
    widget.launcher.hover()
    page.wait_for_function("() => window.WebcallWidget.get().connection !== undefined")
    assert any(url.endswith(APP) for url in urls)
    assert any(url.endswith(PANEL_CSS) for url in urls)
    expect(widget.panel).to_be_hidden()  # loaded, not opened


def test_focus_on_the_launcher_loads_the_app(live_site, page):
    widget, urls = loaded_on_a_page_view(live_site, page)
    widget.launcher.focus()
    page.wait_for_function("() => window.WebcallWidget.get().connection !== undefined")
    assert any(url.endswith(APP) for url in urls)


def test_a_click_before_the_app_arrived_opens_the_panel_when_it_does(live_site, page):
    held: list = []
    widget, _ = loaded_on_a_page_view(live_site, page)
    page.route(f"**{APP}", lambda route: held.append(route))
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
    assert any(url.endswith(APP) for url in urls)
    expect(widget.panel).to_be_visible()
