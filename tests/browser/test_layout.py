"""Layout on phones and desktops, right-to-left languages, site overrides, screenshots."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.widget import WidgetOnPage

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
    panel = widget.panel.bounding_box()
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
    launcher = widget.launcher.bounding_box()
    assert launcher["x"] < 1280 / 2  # the bottom-right launcher moves to the left
    widget.start_text_chat()
    widget.say("مرحبا")
    widget.expect_agent_reply("You said: مرحبا")
    user = widget.messages("user").last.bounding_box()
    agent = widget.messages("agent").last.bounding_box()
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
    assert widget.launcher.bounding_box()["x"] < 100


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


def test_the_agents_admin_page_carries_its_widget_above_the_submit_row(live_site, page):
    from django.contrib.auth import get_user_model

    from webcall_widget.models import Agent

    get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    page.goto(live_site.url + "/admin/login/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    agent = Agent.objects.get(slug="echo")
    page.goto(live_site.url + f"/admin/webcall_widget/agent/{agent.pk}/change/")
    widget = WidgetOnPage(page).wait_loaded()
    page.keyboard.press("End")
    launcher = widget.launcher.bounding_box()
    delete = page.locator(".submit-row .deletelink").bounding_box()
    overlaps = not (
        launcher["y"] + launcher["height"] <= delete["y"]
        or delete["y"] + delete["height"] <= launcher["y"]
        or launcher["x"] + launcher["width"] <= delete["x"]
        or delete["x"] + delete["width"] <= launcher["x"]
    )
    assert not overlaps
    widget.start_text_chat()  # staff can try the agent right there
