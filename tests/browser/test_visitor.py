"""What matters to every visitor, in Chromium, Firefox and WebKit (Safari's engine): text
chat, voice calls, barge-in, reload and resume, a strict CSP, the keyboard alone and a
right-to-left page. Each scenario is written once (engines/page.py) and runs in each
engine; the rest of the suite runs in Chromium alone.

Every page here fails its test if it threw or logged an error, or if the site answered
anything with an error status (the ``visit`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.engines.firefox import Firefox
from tests.browser.speech import SPOKEN_AGAIN_AND_AGAIN, SPOKEN_ONCE
from tests.browser.visitor import RECORD_EVENTS, Visitor, inside
from tests.browser.voice_start import MARK_VOICE_START, MARKS, VOICE_STARTS, voice_start
from webcall_widget.models import Agent, Call, CallStatus
from webcall_widget.strings import UI

VOICE_PAGE = RECORD_EVENTS + ";\n" + MARK_VOICE_START


def keep_voice_start(visitor: Visitor, mode: str) -> None:
    marks: dict[str, Any] | None = visitor.page.call(MARKS)
    assert marks is not None, "the click on the voice mode was not seen"
    assert {"live", "microphone-open", "worklet-loaded"} <= set(marks), marks
    VOICE_STARTS[visitor.page.engine].append(f"{mode}: {voice_start(marks)}")


# text


def test_a_text_conversation_from_greeting_to_goodbye(visit):
    visitor = visit("/")
    visitor.start_text_chat()
    page = visitor.page
    visitor.say("hello from the browser")
    page.expect_text(visitor.messages("user"), ["hello from the browser"])
    visitor.expect_agent_reply("You said: hello from the browser")
    page.click(inside(".footer-actions .link-button"))
    visitor.expect_state("ended")
    page.wait_for_selector(inside(".footer-actions .secondary-button"))
    call = Call.objects.get()
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "visitor-ended")
    assert ("user", "hello from the browser") in call.messages.values_list("role", "text")


# WebKitGTK's WebSocket (libsoup) reports the server's 1012 as 1006, an abnormal close with
# an error event: the widget sees a dropped start there, and offers to try again.
@pytest.mark.engines("chromium", "firefox")
def test_a_start_cut_by_a_server_that_stopped_just_then_starts_again_without_a_word(
    visit, live_site
):
    """Uvicorn closes a socket it took in its last moments, after a worker's drain, with
    1012: a new call goes to another process instead of telling the visitor to try again."""
    live_site.cut_starts.append(1012)
    visitor = visit("/")
    visitor.start_text_chat()
    visitor.say("after the restart")
    visitor.expect_agent_reply("You said: after the restart")
    assert not visitor.page.is_visible(visitor.notice)
    sockets = [path for kind, path in live_site.requests if kind == "websocket"]
    assert len([path for path in sockets if "/start/" in path]) == 2  # the cut one, then one
    assert not live_site.cut_starts
    assert Call.objects.count() == 1


def test_a_strict_csp_page_works_with_zero_violations(visit):
    visitor = visit("/csp/")
    visitor.start_text_chat()
    visitor.say("strict")
    visitor.expect_agent_reply("You said: strict")
    align = visitor.page.call(
        "(selector) => getComputedStyle(document.querySelector('webcall-widget')"
        ".shadowRoot.querySelector(selector)).alignSelf",
        ".message--user",
    )
    assert align == "flex-end"  # the stylesheet applied
    assert visitor.page.csp_violations() == []


def test_csp_violations_are_seen_in_every_engine(visit):
    """The zero-violation checks would be worthless if an engine's went unseen."""
    visitor = visit("/csp/")
    visitor.page.allow_errors("Content.Security.Policy")  # logged by Chromium and Firefox
    visitor.page.call(
        "() => { const s = document.createElement('style');"
        " s.textContent = 'b{}'; document.head.append(s); }"
    )
    visitor.page.wait_for("() => (window.__cspViolations || []).length > 0")


# voice


def test_spoken_audio_reaches_the_agent_and_its_echo_is_played(visit, live_site):
    visitor = visit("/csp/", microphone=SPOKEN_ONCE, script=VOICE_PAGE)
    visitor.start("WebAudio")
    page = visitor.page
    page.wait_for_selector(inside(".mic"))
    assert not page.is_visible(visitor.input)  # voice only: no composer
    assert page.call("() => window.WebcallWidget.get().voice.context.state") == "running"
    page.wait_for("() => window.WebcallWidget.get().voice.playback !== null")
    visitor.listen()
    turn = visitor.wait_for_message("user", "[")
    keep_voice_start(visitor, "WebAudio")
    assert "s of speech]" in turn[2]["text"]
    echoing = visitor.wait_for_message("agent", "Echoing")
    page.sleep(1.5)
    assert visitor.loudest(echoing[1]) > 0.05  # the echo was heard in the page
    stats = visitor.playback_stats()
    assert stats["played"] > 16000 * 0.8  # most of a second of agent audio...
    # ...with no gap between frames (Firefox and WebKit draw audio from the worklet in bursts
    # here, for PulseAudio's null sink: the jitter buffer may grow once)
    assert stats["underruns"] <= (0 if page.engine == "chromium" else 1)
    call = Call.objects.get()
    assert live_site.sandbox().state.audio_in[call.voicehub_call_id] > 32000  # > 1 s went up
    assert ("http", "/static/webcall_widget/audio-worklet.js") in live_site.requests
    assert page.csp_violations() == []  # script-src 'self' has no blob: for a worklet


def test_voice_and_chat_mixes_typed_messages_and_speech(visit):
    visitor = visit("/", microphone=SPOKEN_ONCE, script=VOICE_PAGE)
    visitor.start("TextAudio")
    page = visitor.page
    page.wait_for_selector(inside(".mic"))
    visitor.say("typed while talking")
    # Not necessarily the last reply: the echo of the speech may come right after it.
    visitor.wait_for_message("agent", "You said: typed while talking")
    visitor.wait_for_message("user", "[")
    keep_voice_start(visitor, "TextAudio")
    visitor.wait_for_message("agent", "Echoing")
    texts = page.texts(visitor.messages())
    assert "typed while talking" in texts
    assert any(text.endswith("s of speech]") for text in texts)


def test_talking_over_the_agent_stops_its_audio_at_once(visit, live_site):
    visitor = visit("/", microphone=SPOKEN_AGAIN_AND_AGAIN, script=RECORD_EVENTS)
    visitor.start("WebAudio")
    visitor.page.wait_for("() => window.WebcallWidget.get().voice.playback !== null")
    visitor.listen()
    echoing = visitor.wait_for_message("agent", "Echoing")
    interrupt = visitor.wait_for_event("interrupt", after=echoing[1])
    interrupted_at = interrupt[1]
    assert visitor.loudest(echoing[1], interrupted_at) > 0.05  # it was talking...
    visitor.page.sleep(0.6)
    # ...then not, within a quarter of a second (what the engine had rendered ahead plays)
    assert visitor.loudest(interrupted_at + 250, interrupted_at + 600) < 0.01
    assert visitor.playback_stats()["speaking"] is False
    interrupted = inside(".message--interrupted")
    visitor.page.expect_text(f"{interrupted} .message-status", str(UI["interrupted"]))
    assert visitor.page.text(f"{interrupted} .text").startswith("Echoing")
    sent = live_site.sandbox().state.events(direction="out")
    assert any(record.event == "audio.clear" for record in sent)


def test_hanging_up_releases_the_microphone_and_closes_the_audio_graph(visit):
    visitor = visit("/", microphone=SPOKEN_ONCE)
    visitor.start("WebAudio")
    page = visitor.page
    page.call("() => { window.__voice = window.WebcallWidget.get().voice }")
    page.wait_for("() => window.__voice.stream?.getTracks()[0].readyState === 'live'")
    page.click(inside(".footer-actions .link-button"))
    visitor.expect_state("ended")
    page.wait_for("() => window.__voice.context.state === 'closed'")
    assert page.call(
        "() => window.__voice.stream.getTracks().every(t => t.readyState === 'ended')"
    )
    assert page.call("() => window.WebcallWidget.get().voice") is None


# reload, another page, resume

RECORD_STATES = """(() => {
  window.__states = [];
  document.addEventListener('webcall:state', (e) => window.__states.push(e.detail.state));
})()"""


def test_a_reload_mid_conversation_keeps_the_transcript_and_the_call(visit, live_site):
    visitor = visit("/")
    visitor.start_text_chat()
    page = visitor.page
    visitor.say("before the reload")
    visitor.expect_agent_reply("You said: before the reload")
    page.add_init_script(RECORD_STATES)
    page.reload()
    visitor.wait_loaded()
    visitor.expect_state("live")
    assert page.is_visible(visitor.panel)  # open, as the visitor left it
    page.expect_text(
        visitor.messages(),
        [live_site.sandbox().config.greeting, "before the reload", "You said: before the reload"],
    )
    assert page.call("() => window.__states")[:2] == ["reconnecting", "live"]  # never the start
    visitor.say("after the reload")
    visitor.expect_agent_reply("You said: after the reload")
    page.expect_text(visitor.messages("user"), ["before the reload", "after the reload"])
    call = Call.objects.get()
    assert (call.status, call.resumes) == (CallStatus.LIVE, 1)


def test_another_page_mid_voice_call_continues_the_call_after_one_click(visit, live_site):
    visitor = visit("/", microphone=SPOKEN_ONCE, script=RECORD_EVENTS)
    visitor.start("WebAudio")
    visitor.wait_for_message("user", "[")  # the visitor spoke on the first page
    page = visitor.page
    page.goto(live_site.url + "/csp/")  # another page of the site (with a strict CSP)
    visitor.wait_loaded()
    visitor.expect_state("live")
    page.wait_for(
        "(selector) => document.querySelector('webcall-widget').shadowRoot"
        ".querySelector(selector)?.textContent.includes('s of speech]')",
        ".message--user .text",
    )
    button = inside(".continue-voice")
    page.wait_for_selector(button)
    assert page.is_focused(button)
    page.sleep(1)  # the call waits for the click
    call = Call.objects.get()
    assert (call.status, call.resumes) == ("live", 1)
    page.click(button)
    page.wait_for_selector(button, visible=False)
    page.wait_for_selector(inside(".mic"))
    page.wait_for("() => window.WebcallWidget.get().voice.playback !== null")
    visitor.listen()
    echoing = visitor.wait_for_message("agent", "Echoing")  # the microphone heard again...
    page.sleep(1.5)
    assert visitor.loudest(echoing[1]) > 0.05  # ...and the echo played on this page
    assert page.csp_violations() == []
    joins = [
        r.data["channels"]
        for r in live_site.sandbox().state.events(call.voicehub_call_id, "in")
        if r.event == "channel.join"
    ]
    assert joins == [["audio", "text"], ["audio"]]  # audio left while away, joined again


# the keyboard alone

FOCUSED = """() => {
  let el = document.activeElement;
  while (el && el.shadowRoot && el.shadowRoot.activeElement) {
    el = el.shadowRoot.activeElement;
  }
  return el ? (el.className || el.tagName).toString() : '';
}"""


def tab_until(visitor: Visitor, fragment: str, limit: int = 30) -> None:
    for _ in range(limit):
        visitor.page.press("Tab")
        if fragment in visitor.page.call(FOCUSED):
            return
    raise AssertionError(
        f"never reached {fragment!r} with Tab; last: {visitor.page.call(FOCUSED)!r}"
    )


def test_keyboard_alone_runs_a_whole_conversation(visit):
    visitor = visit("/")
    page = visitor.page
    tab_until(visitor, "launcher")
    page.press("Enter")
    page.wait_for_selector(visitor.panel)
    assert "primary-button" in page.call(FOCUSED)  # focus moved into the panel
    page.press("Enter")
    visitor.expect_state("live")
    page.wait_for(f"() => ({FOCUSED})().includes('input')")
    for key in "typed with keys only":
        page.press(key)
    page.press("Enter")
    visitor.expect_agent_reply("You said: typed with keys only")
    tab_until(visitor, "link-button")  # End conversation
    page.press("Enter")
    visitor.expect_state("ended")
    assert "secondary-button" in page.call(FOCUSED)  # Start again
    page.press("Escape")
    page.wait_for_selector(visitor.panel, visible=False)
    assert "launcher" in page.call(FOCUSED)


# right to left

DIRECTION = """(selector) => getComputedStyle(document.querySelector('webcall-widget')
  .shadowRoot.querySelector(selector)).direction"""

# Where the first and the last character of an element's text are drawn.
ENDS = """(selector) => {
  const el = document.querySelector('webcall-widget').shadowRoot.querySelector(selector);
  const text = document.createTreeWalker(el, NodeFilter.SHOW_TEXT).nextNode();
  const x = (at) => {
    const range = document.createRange();
    range.setStart(text, at);
    range.setEnd(text, at + 1);
    return range.getBoundingClientRect().x;
  };
  return [x(0), x(text.length - 1)];
}"""


def keeps_its_direction(visitor: Visitor, selector: str) -> None:
    """Latin text with punctuation at its end, drawn left to right on a right-to-left page:
    not isolated, the punctuation would go to its left."""
    assert visitor.page.call(DIRECTION, selector) == "ltr", selector
    first, last = visitor.page.call(ENDS, selector)
    assert last > first, f"{selector}: its last character is drawn left of its first"


def test_admin_written_texts_keep_their_own_direction_on_a_right_to_left_page(visit):
    Agent.objects.filter(slug="echo").update(
        title="Shop help (24/7)!",
        subtitle="Orders, returns, etc.",
        greeting="Hello! Ask about anything...",
        launcher_label="Chat with us!",
    )
    visitor = visit("/?lang=ar")
    assert visitor.page.attribute(visitor.root, "dir") == "rtl"
    keeps_its_direction(visitor, ".launcher-label")
    visitor.open()
    for selector in (".title bdi", ".subtitle bdi", ".about bdi", ".greeting bdi"):
        keeps_its_direction(visitor, selector)
    visitor.start_text_chat()
    keeps_its_direction(visitor, ".message--agent .text")  # VoiceHub's greeting
    # the agent's name before each of its messages, for screen readers
    assert visitor.page.call(DIRECTION, ".message--agent .sr-only bdi") == "ltr"


# sound that cannot start

SOUND_ON = inside(".voicebar .secondary-button")


def test_sound_the_browser_holds_back_is_said_and_one_click_starts_it(visit):
    visitor = visit("/", microphone=SPOKEN_ONCE)
    visitor.start("WebAudio")
    page = visitor.page
    assert not page.is_visible(SOUND_ON)
    # what a browser does to a page that may not play yet (autoplay rules, Safari's
    # interruptions): the widget says so once its call has waited a moment for sound
    page.call("() => window.WebcallWidget.get().voice.context.suspend()")
    page.wait_for_selector(SOUND_ON)
    page.expect_text(inside(".voice-status"), str(UI["soundHeld"]))
    page.expect_text(SOUND_ON, str(UI["soundOn"]))
    page.click(SOUND_ON)
    page.wait_for("() => window.WebcallWidget.get().voice.context.state === 'running'")
    page.wait_for_selector(SOUND_ON, visible=False)
    visitor.expect_state("live")


@pytest.fixture(scope="module")
def firefox_without_speakers() -> Iterator[Firefox]:
    """A visitor's Firefox on a computer with no sound device: no AudioContext runs."""
    firefox = Firefox(None)
    yield firefox
    firefox.close()


@pytest.mark.firefox
def test_no_speakers_at_all_is_said_after_the_click_that_would_start_the_sound(
    firefox_without_speakers, live_site
):
    page = firefox_without_speakers.new_page(live_site)
    try:
        page.goto(live_site.url + "/")
        visitor = Visitor(page).wait_loaded()
        visitor.start("TextAudio")  # no microphone either: it goes on as text
        page.wait_for_selector(SOUND_ON)
        page.expect_text(inside(".voice-status"), str(UI["soundHeld"]))
        page.click(SOUND_ON)
        page.expect_text(inside(".voice-status"), str(UI["noSound"]))
        assert page.is_visible(SOUND_ON)  # it may be plugged in yet
        visitor.say("still here")
        visitor.expect_agent_reply("You said: still here")
        assert page.unexpected_errors() == []
    finally:
        page.close()
