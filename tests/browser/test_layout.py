"""Layout on phones and desktops, right-to-left languages, site overrides, screenshots."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.widget import WidgetOnPage, bounds

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture
def phone(browser):
    context = browser.new_context(**PHONE, reduced_motion="reduce")
    yield context.new_page()
    context.close()


def test_panel_fills_the_screen_on_a_phone(live_site, phone, screenshots):
    phone.goto(live_site.url + "/")
    widget = WidgetOnPage(phone).wait_loaded()
    widget.launcher.tap()
    phone.locator("webcall-widget .start [data-mode=text]").tap()
    widget.expect_state("live")
    widget.say("hello from a phone")
    widget.expect_agent_reply("You said: hello from a phone")
    box = widget.panel.bounding_box()
    assert box == {"x": 0, "y": 0, "width": 390, "height": 844}
    expect(widget.launcher).to_be_hidden()  # the panel has its own close button
    phone.screenshot(path=screenshots / "mobile.png")


def test_closed_widget_never_blocks_taps_on_the_page(live_site, phone):
    phone.goto(live_site.url + "/")
    widget = WidgetOnPage(phone).wait_loaded()
    box = widget.launcher.bounding_box()
    hits = phone.evaluate(
        """(launcher) => {
          const points = [[20, 400], [200, 600], [370, 700], [launcher.x - 8, launcher.y + 8]];
          return points.map(([x, y]) => document.elementFromPoint(x, y).tagName);
        }""",
        box,
    )
    assert "WEBCALL-WIDGET" not in hits


def test_closing_the_panel_gives_the_page_back(live_site, page):
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.launcher.click()
    panel = bounds(widget.panel)
    page.keyboard.press("Escape")
    tag = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).tagName",
        [panel["x"] + panel["width"] / 2, panel["y"] + panel["height"] / 2],
    )
    assert tag != "WEBCALL-WIDGET"


def test_french_page_gets_french_words(live_site, page):
    page.goto(live_site.url + "/?lang=fr")
    widget = WidgetOnPage(page).wait_loaded()
    widget.launcher.click()
    expect(page.locator("webcall-widget .choose")).to_have_text(
        "Comment souhaitez-vous échanger ?"
    )
    expect(page.locator("webcall-widget .start [data-mode=text]")).to_have_text("Discussion")
    expect(page.locator("webcall-widget .start [data-mode=WebAudio]")).to_have_text("Appel vocal")
    expect(page.locator("webcall-widget .status")).to_have_text("Prêt quand vous l’êtes")
    expect(widget.root).to_have_attribute("lang", "fr")


def test_right_to_left_language_mirrors_the_layout(live_site, page, screenshots):
    page.goto(live_site.url + "/?lang=ar")
    widget = WidgetOnPage(page).wait_loaded()
    expect(widget.root).to_have_attribute("dir", "rtl")
    launcher = bounds(widget.launcher)
    assert launcher["x"] < 1280 / 2  # the bottom-right launcher moves to the left
    widget.start_text_chat()
    widget.say("مرحبا")
    widget.expect_agent_reply("You said: مرحبا")
    user = bounds(widget.messages("user").last)
    agent = bounds(widget.messages("agent").last)
    assert user["x"] < agent["x"]  # the visitor's bubbles sit on the left
    expect(page.locator("webcall-widget .status")).to_have_text("متصل")
    page.screenshot(path=screenshots / "rtl.png")


def test_site_css_custom_properties_override_the_agent_colours(live_site, page):
    page.goto(live_site.url + "/")
    page.add_style_tag(content="webcall-widget { --webcall-primary: rgb(10, 120, 60); }")
    widget = WidgetOnPage(page).wait_loaded()
    expect(widget.launcher).to_have_css("background-color", "rgb(10, 120, 60)")


def test_agent_colours_and_position_come_from_the_admin(live_site, page):
    from webcall_widget.models import Agent

    agent = Agent.objects.get(slug="echo")
    agent.primary_color = "#aa2200"
    agent.position = "bottom-left"
    agent.save()
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    expect(widget.launcher).to_have_css("background-color", "rgb(170, 34, 0)")
    assert bounds(widget.launcher)["x"] < 100


def test_screenshots_of_the_widget(live_site, browser, screenshots):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, reduced_motion="reduce")
    page = context.new_page()
    try:
        page.goto(live_site.url + "/")
        widget = WidgetOnPage(page).wait_loaded()
        page.screenshot(path=screenshots / "closed.png")
        widget.launcher.click()
        expect(page.locator("webcall-widget .start")).to_be_visible()
        page.screenshot(path=screenshots / "open.png")
        page.locator("webcall-widget .start [data-mode=text]").click()
        widget.expect_state("live")
        widget.say("Do you ship to Canada?")
        widget.expect_agent_reply("You said: Do you ship to Canada?")
        widget.input.fill("And how long does it take?")
        page.screenshot(path=screenshots / "conversation.png")
    finally:
        context.close()
    for name in ("closed", "open", "conversation"):
        assert (screenshots / f"{name}.png").stat().st_size > 10_000


def test_the_agents_admin_page_has_no_widget_over_its_form(live_site, page):
    from django.contrib.auth import get_user_model

    from webcall_widget.models import Agent

    get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    page.goto(live_site.url + "/admin/login/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    agent = Agent.objects.get(slug="echo")
    page.goto(live_site.url + f"/admin/webcall_widget/agent/{agent.pk}/change/")
    expect(page.locator("#id_allowed_origins")).to_be_visible()
    expect(page.locator("script[data-agent]")).to_have_count(0)
    expect(page.locator("webcall-widget")).to_have_count(0)


ADMIN_TEXTS_DIRECTIONS = """() => {
  const root = document.querySelector('webcall-widget').shadowRoot;
  return Object.fromEntries([...root.querySelectorAll('bdi')]
    .map((e) => [e.textContent, getComputedStyle(e).direction]));
}"""


def test_the_subtitle_wraps_to_two_lines_and_the_start_view_shows_it_whole(live_site, page):
    from webcall_widget.models import Agent

    subtitle = (
        "Questions about orders, deliveries, returns and refunds, answered day and night "
        "by our assistant, who also knows the opening hours of every shop"
    )
    Agent.objects.filter(slug="echo").update(subtitle=subtitle)
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.launcher.click()
    header = page.locator("webcall-widget .header .subtitle")
    line_height = float(header.evaluate("(e) => parseFloat(getComputedStyle(e).lineHeight)"))
    height = header.bounding_box()["height"]
    assert 1.5 * line_height < height < 2.5 * line_height  # two lines, no more
    expect(header).to_have_attribute("title", subtitle)
    expect(page.locator("webcall-widget .start .about")).to_have_text(subtitle)
    expect(page.locator("webcall-widget .start .about")).to_be_visible()


def test_touch_targets_are_at_least_44_px_on_a_phone(live_site, phone):
    phone.goto(live_site.url + "/")
    widget = WidgetOnPage(phone).wait_loaded()
    assert phone.evaluate("matchMedia('(pointer: coarse)').matches")
    widget.launcher.tap()
    phone.locator("webcall-widget .start [data-mode=text]").tap()
    widget.expect_state("live")
    for selector in (".header .icon-button", ".send", ".footer-actions .link-button"):
        box = phone.locator(f"webcall-widget {selector}").bounding_box()
        assert box["width"] >= 44 and box["height"] >= 44, (selector, box)
