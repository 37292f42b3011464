"""Voice calls in Chromium with a fake microphone fed from speech made by espeak-ng.

Chromium's --use-fake-device-for-media-stream with --use-file-for-fake-audio-capture
plays a WAV file as the microphone. Without --use-fake-ui-for-media-stream the
permission comes from the browser context, so one browser can grant it or not.
"""

from __future__ import annotations

import contextlib

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.engines import Engines
from tests.browser.engines.chromium import Chromium, new_context, probed_page
from tests.browser.pages import page_with, static_page
from tests.browser.speech import SPOKEN_ONCE
from tests.browser.visitor import RECORD_EVENTS
from tests.browser.widget import TIMEOUT, WidgetOnPage
from tests.servers import ServerThread
from webcall_widget.embed import script_tag
from webcall_widget.models import Agent, Call
from webcall_widget.strings import ERRORS, UI

VOICE_TIMEOUT = 20_000


def chromium(engines: Engines) -> Chromium:
    started = engines.get("chromium")
    assert isinstance(started, Chromium)
    return started


@pytest.fixture
def spoken_once(engines: Engines) -> Browser:
    """Chromium whose microphone says one sentence, then stays silent."""
    return chromium(engines).browser(SPOKEN_ONCE)


@pytest.fixture
def no_microphone(engines: Engines) -> Browser:
    """Chromium without a fake device: this machine has no microphone."""
    return chromium(engines).browser(None)


@pytest.fixture
def open_page(live_site):
    """Open the demo site in a browser, with or without microphone permission."""
    with contextlib.ExitStack() as stack:

        def open_(
            browser: Browser,
            *,
            microphone: bool = True,
            path: str = "/",
            script: str = "",
            url: str | None = None,
        ) -> Page:
            context = new_context(browser, permissions=["microphone"] if microphone else [])
            stack.callback(context.close)
            page = stack.enter_context(probed_page(context))
            page.add_init_script(RECORD_EVENTS)
            if script:
                # Before the first load: a reload would abort requests in flight.
                page.add_init_script(script)
            page.goto(url or live_site.url + path)
            return page

        yield open_


def start(page: Page, mode_label: str) -> WidgetOnPage:
    widget = WidgetOnPage(page).wait_loaded()
    widget.launcher.click()
    page.get_by_role("button", name=mode_label).click()
    widget.expect_state("live")
    return widget


def wait_for_message(page: Page, role: str, starts_with: str, timeout: int = VOICE_TIMEOUT):
    return page.wait_for_function(
        """([role, prefix]) => window.__events.find(([name, at, d]) =>
             name === 'message' && d.role === role && d.final && d.text.startsWith(prefix))""",
        arg=[role, starts_with],
        timeout=timeout,
    ).json_value()


def test_level_meter_moves_while_the_visitor_speaks(live_site, spoken_once, open_page):
    page = open_page(spoken_once)
    start(page, str(UI["modeWebAudio"]))
    page.wait_for_function(
        """() => parseFloat(getComputedStyle(
             document.querySelector('webcall-widget').shadowRoot.querySelector('.meter')
           ).getPropertyValue('--level')) > 0.1""",
        timeout=VOICE_TIMEOUT,
    )


def test_mute_stops_the_microphone_and_says_so(live_site, spoken_once, open_page):
    page = open_page(spoken_once)
    start(page, str(UI["modeWebAudio"]))
    mic = page.locator("webcall-widget .mic")
    mic.click()
    expect(mic).to_have_attribute("aria-pressed", "true")
    expect(mic).to_have_attribute("aria-label", str(UI["unmute"]))
    expect(page.locator("webcall-widget .voice-status")).to_have_text(str(UI["voiceMuted"]))
    assert (
        page.evaluate("window.WebcallWidget.get().voice.stream.getAudioTracks()[0].enabled")
        is False
    )
    mic.click()
    expect(mic).to_have_attribute("aria-pressed", "false")


def test_denied_microphone_explains_and_offers_text_instead(live_site, spoken_once, open_page):
    page = open_page(spoken_once, microphone=False)
    widget = WidgetOnPage(page).wait_loaded()
    widget.launcher.click()
    page.get_by_role("button", name=str(UI["modeWebAudio"])).click()
    widget.expect_state("error")
    expect(widget.notice).to_contain_text(str(ERRORS["mic_denied"]))
    assert Call.objects.count() == 0  # no credits spent on a call that cannot be heard
    page.get_by_role("button", name=str(UI["textInstead"])).click()
    widget.expect_state("live")
    widget.say("typing instead")
    widget.expect_agent_reply("You said: typing instead")
    assert Call.objects.get().mode == "text"


def test_denied_microphone_in_voice_and_chat_goes_on_as_text(live_site, spoken_once, open_page):
    page = open_page(spoken_once, microphone=False)
    widget = WidgetOnPage(page).wait_loaded()
    widget.launcher.click()
    page.get_by_role("button", name=str(UI["modeTextAudio"])).click()
    widget.expect_state("live")
    expect(widget.notice).to_contain_text(str(UI["continuingAsText"]))
    expect(page.locator("webcall-widget .mic")).to_be_hidden()
    widget.say("still here")
    widget.expect_agent_reply("You said: still here")


def test_denied_microphone_in_voice_and_chat_can_be_tried_again(live_site, spoken_once, open_page):
    page = open_page(spoken_once, microphone=False)
    widget = WidgetOnPage(page).wait_loaded()
    widget.launcher.click()
    page.get_by_role("button", name=str(UI["modeTextAudio"])).click()
    widget.expect_state("live")
    expect(widget.notice).to_contain_text(str(ERRORS["mic_denied"]))
    page.context.grant_permissions(["microphone"])  # the visitor allows it in site settings
    widget.notice.get_by_role("button", name=str(UI["retry"])).click()
    expect(page.locator("webcall-widget .mic")).to_be_visible()
    expect(widget.notice).to_be_hidden()
    wait_for_message(page, "user", "[")  # the visitor's speech now reaches the agent


def test_missing_microphone_says_none_was_found(live_site, no_microphone, open_page):
    page = open_page(no_microphone)
    widget = WidgetOnPage(page).wait_loaded()
    widget.launcher.click()
    page.get_by_role("button", name=str(UI["modeWebAudio"])).click()
    expect(widget.notice).to_contain_text(str(ERRORS["mic_missing"]))


def test_voice_works_on_a_page_of_another_origin_that_the_agent_lists(
    live_site, spoken_once, open_page
):
    # Browsers fetch worklet modules in CORS mode: a static file without the agent's CORS
    # headers would stop the microphone here.
    snippet = script_tag("echo", base_url=live_site.url)
    with ServerThread(static_page(page_with(snippet)), name="voice-shop") as shop:
        agent = Agent.objects.get(slug="echo")
        agent.allowed_origins = shop.url
        agent.save()
        page = open_page(spoken_once, url=shop.url + "/")
        start(page, str(UI["modeWebAudio"]))
        turn = wait_for_message(page, "user", "[")
        assert "s of speech]" in turn[2]["text"]


def test_a_screen_wake_lock_is_requested_during_a_voice_call(live_site, spoken_once, open_page):
    page = open_page(
        spoken_once,
        script="""(() => {
          window.__wakeLocks = 0;
          if (navigator.wakeLock) {
            const request = navigator.wakeLock.request.bind(navigator.wakeLock);
            navigator.wakeLock.request = (type) => {
              window.__wakeLocks += 1;
              return request(type);
            };
          }
        })()""",
    )
    start(page, str(UI["modeWebAudio"]))
    page.wait_for_function("window.__wakeLocks >= 1", timeout=TIMEOUT)
