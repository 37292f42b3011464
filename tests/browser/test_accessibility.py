"""Keyboard-only use, labels, focus, live announcements, reduced motion."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.widget import WidgetOnPage


def focused(page) -> str:
    """A description of the element that has focus, looking inside the widget's shadow root."""
    return page.evaluate(
        """() => {
          let el = document.activeElement;
          while (el && el.shadowRoot && el.shadowRoot.activeElement) {
            el = el.shadowRoot.activeElement;
          }
          return el ? (el.className || el.tagName).toString() : '';
        }"""
    )


def tab_until(page, fragment: str, limit: int = 30) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if fragment in focused(page):
            return
    raise AssertionError(f"never reached {fragment!r} with Tab; last: {focused(page)!r}")


def test_escape_closes_the_panel_and_returns_focus_to_the_launcher(live_site, page):
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.launcher.click()
    expect(widget.launcher).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")
    expect(widget.panel).to_be_hidden()
    expect(widget.launcher).to_have_attribute("aria-expanded", "false")
    assert "launcher" in focused(page)


def test_every_control_has_an_accessible_name(live_site, page):
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.start_text_chat()
    unnamed = page.evaluate(
        """() => {
          const root = document.querySelector('webcall-widget').shadowRoot;
          return [...root.querySelectorAll('button, textarea, input, [role=dialog]')]
            .filter((el) => !el.hidden && el.offsetParent !== null)
            .filter((el) => !(el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
                              || el.textContent.trim()))
            .map((el) => el.outerHTML.slice(0, 80));
        }"""
    )
    assert unnamed == []
    expect(page.get_by_role("dialog", name="Echo assistant")).to_be_visible()
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.get_by_role("button", name="Close chat")).to_be_visible()


def test_new_agent_messages_are_announced_politely(live_site, page):
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.start_text_chat()
    widget.say("announce me")
    widget.expect_agent_reply("You said: announce me")
    region = page.locator("webcall-widget .announcer")
    expect(region).to_have_attribute("aria-live", "polite")
    expect(region).to_have_text("Echo assistant says: You said: announce me")
    expect(page.locator("webcall-widget .transcript")).to_have_attribute("role", "log")


def test_reduced_motion_turns_animations_off(live_site, browser):
    context = browser.new_context(reduced_motion="reduce")
    try:
        page = context.new_page()
        page.goto(live_site.url + "/")
        widget = WidgetOnPage(page).wait_loaded()
        widget.launcher.click()
        expect(widget.panel).to_have_css("animation-name", "none")
    finally:
        context.close()


def test_panel_animates_when_motion_is_fine(live_site, page):
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.launcher.click()
    expect(widget.panel).to_have_css("animation-name", "webcall-pop")
