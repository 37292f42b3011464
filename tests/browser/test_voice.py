"""Voice calls in Chromium with a fake microphone fed from speech made by espeak-ng.

Chromium's --use-fake-device-for-media-stream with --use-file-for-fake-audio-capture
plays a WAV file as the microphone. Without --use-fake-ui-for-media-stream the
permission comes from the browser context, so one browser can grant it or not.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect

from tests.browser.conftest import launch, new_context, probed_page
from tests.browser.pages import page_with, static_page
from tests.browser.widget import TIMEOUT, WidgetOnPage
from tests.servers import ServerThread
from webcall_widget.embed import script_tag
from webcall_widget.models import Agent, Call
from webcall_widget.strings import ERRORS, UI

ROOT = Path(__file__).resolve().parent.parent.parent
ARTIFACTS = ROOT / "tests" / ".artifacts"
VOICE_TIMEOUT = 20_000

# Measures what the widget really plays: an AnalyserNode on its playback worklet's output.
LISTEN = """() => {
  const voice = window.WebcallWidget.get().voice;
  const analyser = voice.context.createAnalyser();
  analyser.fftSize = 1024;
  voice.playback.connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  window.__heard = [];
  window.__voice = voice;
  window.__listening = setInterval(() => {
    analyser.getFloatTimeDomainData(data);
    let peak = 0;
    for (const v of data) peak = Math.max(peak, Math.abs(v));
    window.__heard.push([performance.now(), peak]);
  }, 20);
}"""

# The playback processor's counters, asked for on its port as the widget does not.
STATS = """() => new Promise((resolve) => {
  const port = window.__voice.playback.port;
  port.addEventListener('message', (e) => e.data.type === 'stats' && resolve(e.data));
  port.postMessage({ type: 'stats' });
})"""

RECORD = """() => {
  window.__events = [];
  for (const name of ['ready', 'message', 'state', 'error', 'interrupt']) {
    document.addEventListener('webcall:' + name,
      (e) => window.__events.push([name, performance.now(), e.detail]));
  }
}"""


def speech(name: str, text: str, tail: float) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    subprocess.run(
        [str(ROOT / "scripts" / "make-speech-wav"), str(path), text, str(tail)], check=True
    )
    return path


def fake_microphone(playwright: Playwright, wav: Path, *, loop: bool) -> Browser:
    """Chromium whose microphone plays ``wav`` (once, or over and over)."""
    return launch(
        playwright,
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}{'' if loop else '%noloop'}",
    )


@pytest.fixture(scope="module")
def spoken_once(playwright: Playwright) -> Iterator[Browser]:
    """A microphone that says one sentence, then stays silent."""
    wav = speech("question.wav", "Hello, when will my order arrive?", 1.5)
    browser = fake_microphone(playwright, wav, loop=False)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def spoken_again_and_again(playwright: Playwright) -> Iterator[Browser]:
    """A microphone that repeats its sentence: the visitor talks over the agent's echo."""
    wav = speech("repeating.wav", "Hello, when will my order arrive?", 0.8)
    browser = fake_microphone(playwright, wav, loop=True)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def no_microphone(playwright: Playwright) -> Iterator[Browser]:
    browser = launch(playwright)  # no fake device, and this machine has no microphone
    yield browser
    browser.close()


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
            page.add_init_script(f"({RECORD})()")
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


def loudest_after(page: Page, since: float, until: float | None = None) -> float:
    return page.evaluate(
        """([since, until]) => Math.max(0, ...window.__heard
             .filter(([t]) => t >= since && (until === null || t <= until))
             .map(([, peak]) => peak))""",
        [since, until],
    )


def test_spoken_audio_reaches_the_agent_and_its_echo_is_played(live_site, spoken_once, open_page):
    page = open_page(spoken_once)
    widget = start(page, str(UI["modeWebAudio"]))
    expect(page.locator("webcall-widget .mic")).to_be_visible()
    expect(widget.input).to_be_hidden()  # voice only: no composer
    assert page.evaluate("window.WebcallWidget.get().voice.context.state") == "running"
    page.evaluate(LISTEN)
    turn = wait_for_message(page, "user", "[")
    assert "s of speech]" in turn[2]["text"]
    echoing = wait_for_message(page, "agent", "Echoing")
    page.wait_for_timeout(1500)
    assert loudest_after(page, echoing[1]) > 0.05  # the echo was heard in the page
    stats = page.evaluate(STATS)
    assert stats["played"] > 16000 * 0.8  # most of a second of agent audio...
    assert stats["underruns"] == 0  # ...with no gap between frames
    call = Call.objects.get()
    vh_call = call.voicehub_call_id
    assert live_site.sandbox().state.audio_in[vh_call] > 32000  # > 1 s of speech went up


def test_level_meter_moves_while_the_visitor_speaks(live_site, spoken_once, open_page):
    page = open_page(spoken_once)
    start(page, str(UI["modeWebAudio"]))
    page.wait_for_function(
        """() => parseFloat(getComputedStyle(
             document.querySelector('webcall-widget').shadowRoot.querySelector('.meter')
           ).getPropertyValue('--level')) > 0.1""",
        timeout=VOICE_TIMEOUT,
    )


def test_hanging_up_releases_the_microphone_and_closes_the_audio_graph(
    live_site, spoken_once, open_page
):
    page = open_page(spoken_once)
    widget = start(page, str(UI["modeWebAudio"]))
    page.evaluate("window.__voice = window.WebcallWidget.get().voice")
    assert page.evaluate("window.__voice.stream.getTracks()[0].readyState") == "live"
    page.get_by_role("button", name=str(UI["end"])).click()
    widget.expect_state("ended")
    page.wait_for_function("window.__voice.context.state === 'closed'", timeout=TIMEOUT)
    assert page.evaluate("window.__voice.stream.getTracks().every(t => t.readyState === 'ended')")
    assert page.evaluate("window.WebcallWidget.get().voice") is None


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


def test_talking_over_the_agent_stops_its_audio_at_once(
    live_site, spoken_again_and_again, open_page
):
    page = open_page(spoken_again_and_again)
    start(page, str(UI["modeWebAudio"]))
    page.evaluate(LISTEN)
    echoing = wait_for_message(page, "agent", "Echoing")
    interrupt = page.wait_for_function(
        """(after) => window.__events.find(([name, at]) => name === 'interrupt' && at > after)""",
        arg=echoing[1],
        timeout=VOICE_TIMEOUT,
    ).json_value()
    interrupted_at = interrupt[1]
    assert loudest_after(page, echoing[1], interrupted_at) > 0.05  # it was talking...
    page.wait_for_timeout(400)
    assert loudest_after(page, interrupted_at + 60, interrupted_at + 400) < 0.01  # ...then not
    stats = page.evaluate(STATS)
    assert stats["speaking"] is False
    clear_events = [
        r for r in live_site.sandbox().state.events(direction="out") if r.event == "audio.clear"
    ]
    assert clear_events


def test_an_agent_message_talked_over_is_marked_interrupted(
    live_site, spoken_again_and_again, open_page
):
    page = open_page(spoken_again_and_again)
    start(page, str(UI["modeWebAudio"]))
    echoing = wait_for_message(page, "agent", "Echoing")
    page.wait_for_function(
        """(after) => window.__events.find(([name, at]) => name === 'interrupt' && at > after)""",
        arg=echoing[1],
        timeout=VOICE_TIMEOUT,
    )
    interrupted = page.locator("webcall-widget .message--interrupted").first
    expect(interrupted.locator(".text")).to_have_text(echoing[2]["text"])
    expect(interrupted.locator(".message-status")).to_have_text(str(UI["interrupted"]))


def test_voice_and_chat_mixes_typed_messages_and_speech(live_site, spoken_once, open_page):
    page = open_page(spoken_once)
    widget = start(page, str(UI["modeTextAudio"]))
    expect(widget.input).to_be_enabled()
    expect(page.locator("webcall-widget .mic")).to_be_visible()
    widget.say("typed while talking")
    # Not necessarily the last reply: the echo of the speech may come right after it.
    wait_for_message(page, "agent", "You said: typed while talking")
    wait_for_message(page, "user", "[")
    wait_for_message(page, "agent", "Echoing")
    texts = widget.messages().all_text_contents()
    assert "typed while talking" in texts
    assert any(text.endswith("s of speech]") for text in texts)


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


def test_voice_works_under_a_strict_csp_with_a_same_origin_worklet(
    live_site, spoken_once, open_page
):
    page = open_page(spoken_once, path="/csp/")
    start(page, str(UI["modeWebAudio"]))
    wait_for_message(page, "user", "[")
    assert ("http", "/static/webcall_widget/audio-worklet.js") in live_site.requests
    assert page.probe.csp_violations() == []  # script-src 'self' has no blob: for a worklet


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


def test_another_page_mid_voice_call_continues_the_call_after_one_click(
    live_site, spoken_once, open_page
):
    page = open_page(spoken_once)
    start(page, str(UI["modeWebAudio"]))
    wait_for_message(page, "user", "[")  # the visitor spoke on the first page
    page.goto(live_site.url + "/csp/")  # another page of the site (with a strict CSP)
    widget = WidgetOnPage(page).wait_loaded()
    widget.expect_state("live")
    expect(widget.messages("user").first).to_contain_text("s of speech]")  # the transcript
    button = page.get_by_role("button", name=str(UI["continueVoice"]))
    expect(button).to_be_visible()
    expect(button).to_be_focused()
    page.wait_for_timeout(1000)  # the call waits for the click
    call = Call.objects.get()
    assert (call.status, call.resumes) == ("live", 1)
    button.click()
    expect(button).to_be_hidden()
    expect(page.locator("webcall-widget .mic")).to_be_visible()
    page.wait_for_function("window.WebcallWidget.get().voice.playback !== null", timeout=TIMEOUT)
    page.evaluate(LISTEN)
    echoing = wait_for_message(page, "agent", "Echoing")  # the microphone heard again...
    page.wait_for_timeout(1500)
    assert loudest_after(page, echoing[1]) > 0.05  # ...and the echo played on this page
    assert page.probe.csp_violations() == []
    joins = [
        r.data["channels"]
        for r in live_site.sandbox().state.events(call.voicehub_call_id, "in")
        if r.event == "channel.join"
    ]
    assert joins == [["audio", "text"], ["audio"]]  # audio left while away, joined again
