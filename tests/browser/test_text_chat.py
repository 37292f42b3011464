"""Text chat in Chromium: a visitor on the demo page talking to the sandbox echo agent (a
whole conversation, and a reload, in every engine: test_visitor.py)."""

from __future__ import annotations

import asyncio

import pytest
from playwright.sync_api import expect

from tests.browser.engines.chromium import probed_page
from tests.browser.widget import TIMEOUT, WidgetOnPage, bounds
from webcall_widget.models import Agent, Call, CallStatus, TranscriptMessage
from webcall_widget.relay import lifecycle
from webcall_widget.strings import ERRORS, UI


@pytest.fixture
def widget(live_site, page) -> WidgetOnPage:
    """The demo page, with a text chat started."""
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.start_text_chat()
    return widget


def ended_call(page) -> Call:
    """The page's call, once its end is recorded (5 s at most)."""
    call = Call.objects.get()
    for _ in range(50):
        if call.ended_at:
            break
        page.wait_for_timeout(100)
        call.refresh_from_db()
    return call


def test_partial_replies_are_replaced_in_place(widget, page):
    page.evaluate(
        """() => {
          window.__partials = 0;
          document.addEventListener('webcall:message', (e) => {
            if (!e.detail.final) window.__partials += 1;
          });
        }"""
    )
    widget.say("one two three four")
    widget.expect_agent_reply("You said: one two three four")
    assert page.evaluate("window.__partials") >= 3
    expect(widget.messages("agent")).to_have_count(2)  # the greeting and one reply
    expect(page.locator("webcall-widget .message--partial")).to_have_count(0)


def test_text_is_rendered_as_text_never_as_html(widget, page):
    payload = '<img src="x" onerror="window.__owned = true"><b>bold</b>'
    widget.say(payload)
    widget.expect_agent_reply(f"You said: {payload}")
    expect(widget.messages("user").last).to_have_text(payload)
    assert (
        page.locator("webcall-widget .transcript img, webcall-widget .transcript b").count() == 0
    )
    assert page.evaluate("window.__owned === undefined")


def test_agent_markdown_is_formatted_and_the_visitors_text_is_not(widget, page):
    typed = "**bold**, *soft*, `code` and [the docs](https://example.com/docs)"
    widget.say(typed)
    reply = widget.last_agent_reply
    expect(reply).to_have_text("You said: bold, soft, code and the docs", timeout=TIMEOUT)
    expect(reply.locator("strong")).to_have_text("bold")
    expect(reply.locator("em")).to_have_text("soft")
    expect(reply.locator("code")).to_have_text("code")
    link = reply.locator("a")
    expect(link).to_have_attribute("href", "https://example.com/docs")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(widget.messages("user").last).to_have_text(typed)
    expect(page.locator("webcall-widget .message--user strong")).to_have_count(0)


def test_agent_lists_become_lists(widget):
    widget.input.fill("steps\n1. open the box\n2. plug it in")
    widget.input.press("Enter")
    reply = widget.last_agent_reply
    expect(reply.locator("ol > li")).to_have_text(["open the box", "plug it in"], timeout=TIMEOUT)
    expect(reply.locator("p")).to_have_text("You said: steps")


def test_agent_links_other_than_web_and_mail_stay_text(widget):
    typed = "[click](javascript:alert(1)) [data](data:text/html,hi) see https://example.com/a."
    widget.say(typed)
    reply = widget.last_agent_reply
    expect(reply).to_contain_text("see https://example.com/a.", timeout=TIMEOUT)
    expect(reply.locator("a")).to_have_count(1)
    expect(reply.locator("a")).to_have_attribute("href", "https://example.com/a")
    assert "click" in reply.text_content() and "data" in reply.text_content()


def test_shift_enter_makes_a_new_line_and_enter_sends(widget):
    widget.input.type("first line")
    widget.input.press("Shift+Enter")
    widget.input.type("second line")
    expect(widget.messages("user")).to_have_count(0)
    widget.input.press("Enter")
    expect(widget.messages("user").last).to_have_text("first line\nsecond line")
    expect(widget.input).to_have_value("")


def test_enter_during_ime_composition_does_not_send(widget, page):
    widget.input.fill("にほんご")
    widget.input.dispatch_event(
        "keydown", {"key": "Enter", "isComposing": True, "bubbles": True, "cancelable": True}
    )
    expect(widget.input).to_have_value("にほんご")
    widget.input.fill("日本語")  # the composition is committed...
    widget.input.press("Enter")  # ...and the next Enter sends it, the only message sent
    expect(widget.messages("user")).to_have_text(["日本語"])


def test_start_again_begins_a_new_call(widget, page):
    widget.say("bye")  # the echo agent hangs up
    widget.expect_state("ended")
    page.locator("webcall-widget .footer-actions .secondary-button").click()
    widget.expect_state("idle")
    expect(widget.messages()).to_have_count(0)
    page.locator("webcall-widget .start [data-mode=text]").click()
    widget.expect_state("live")
    assert Call.objects.count() == 2


def test_agent_hanging_up_shows_the_conversation_ended(widget, page):
    widget.say("goodbye")
    widget.expect_state("ended")
    expect(widget.messages("agent").last).to_have_text("Goodbye!")
    expect(page.locator("webcall-widget .status")).to_have_text("Conversation ended")


def test_text_mode_never_asks_for_the_microphone(live_site, page):
    page.add_init_script(
        """(() => {
          window.__micRequests = 0;
          const original = navigator.mediaDevices && navigator.mediaDevices.getUserMedia;
          if (original) {
            navigator.mediaDevices.getUserMedia = function (...args) {
              window.__micRequests += 1;
              return original.apply(this, args);
            };
          }
        })()"""
    )
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.start_text_chat()
    widget.say("no microphone please")
    widget.expect_agent_reply("You said: no microphone please")
    assert page.evaluate("window.__micRequests") == 0


# what a visitor is told when something goes wrong


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"voicehub_agent_id": "misconfigured-agent"}, "agent_misconfigured"),
        ({"api_key": "not-a-key"}, "invalid_api_key"),
        ({"api_key": "sandbox-key-no-credits"}, "insufficient_credits"),
        ({"voicehub_agent_id": "voice-echo-agent"}, "operation_not_allowed"),
    ],
)
def test_each_voicehub_refusal_has_its_own_message(live_site, agent_factory, page, fields, code):
    agent_factory(slug="broken", modes=["text"], **fields)
    page.goto(live_site.url + "/?agent=broken")
    widget = WidgetOnPage(page).wait_loaded()
    widget.launcher.click()
    page.locator("webcall-widget .start [data-mode=text]").click()
    widget.expect_state("error")
    expect(widget.notice).to_contain_text(str(ERRORS[code]))
    expect(page.locator("webcall-widget .notice button")).to_have_text("Try again")


def test_voicehub_down_says_so_and_try_again_works(live_site, page):
    live_site.sandbox().state.faults.create_status = 503
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.launcher.click()
    page.locator("webcall-widget .start [data-mode=text]").click()
    expect(widget.notice).to_contain_text(str(ERRORS["upstream_unavailable"]))
    live_site.sandbox().state.faults.create_status = None
    page.locator("webcall-widget .notice button").click()
    widget.expect_state("live")
    expect(widget.notice).to_be_hidden()


def test_a_call_that_fails_to_start_offers_one_action_in_the_middle(live_site, page):
    live_site.sandbox().state.faults.create_status = 503
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.launcher.click()
    page.locator("webcall-widget .start [data-mode=text]").click()
    widget.expect_state("error")
    expect(widget.notice.get_by_role("button")).to_have_text([str(UI["retry"])])
    expect(page.locator("webcall-widget .footer")).to_be_hidden()  # no "Start again" as well
    expect(page.locator("webcall-widget .transcript")).to_be_hidden()  # nor an empty transcript
    notice = bounds(widget.notice)
    panel = bounds(widget.panel)
    middle = notice["y"] + notice["height"] / 2
    assert panel["y"] + panel["height"] / 3 < middle < panel["y"] + 2 * panel["height"] / 3


def test_a_relay_failure_fires_one_error_event(live_site, page):
    live_site.sandbox().state.faults.drop_on_text = "pull the plug"
    page.add_init_script(
        "window.__errors = [];"
        "document.addEventListener('webcall:error', (e) => window.__errors.push(e.detail));"
    )
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.start_text_chat()
    widget.say("pull the plug")
    widget.expect_state("error")  # the socket has closed: every event has fired
    errors = page.evaluate("window.__errors")
    assert [error["code"] for error in errors] == ["upstream_lost"]


def test_disabled_agent_says_it_is_unavailable(live_site, page):
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    Agent.objects.filter(slug="echo").update(is_active=False)
    widget.launcher.click()
    page.locator("webcall-widget .start [data-mode=text]").click()
    expect(widget.notice).to_contain_text(str(ERRORS["agent_disabled"]))


def test_dropped_upstream_says_the_connection_was_lost(live_site, page):
    live_site.sandbox().state.faults.drop_on_text = "pull the plug"
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.start_text_chat()
    widget.say("pull the plug")
    widget.expect_state("error")
    expect(widget.notice).to_contain_text(str(ERRORS["upstream_lost"]))
    expect(page.locator("webcall-widget .footer-actions .secondary-button")).to_be_visible()
    expect(widget.messages("user").last).to_have_text("pull the plug")


def test_a_server_restart_is_a_moment_of_reconnecting_and_the_conversation_goes_on(
    widget, live_site, page
):
    """Where VoiceHub lets a call be joined again (the sandbox does), a server that stops
    sends its visitors on (4013), and the process they come back to takes the call over."""
    widget.say("before the restart")
    widget.expect_agent_reply("You said: before the restart")
    ended = asyncio.run_coroutine_threadsafe(lifecycle.registry.stop_all(), live_site.server.loop)
    assert ended.result(timeout=10) == 1
    widget.expect_state("live")
    widget.say("after the restart")
    widget.expect_agent_reply("You said: after the restart")
    [call] = Call.objects.all()
    assert call.status == CallStatus.LIVE
    texts = TranscriptMessage.objects.filter(call=call, final=True).values_list("text", flat=True)
    assert list(texts).count("You said: before the restart") == 1


def test_a_server_restart_says_so_and_offers_to_start_again_where_calls_cannot_move(
    live_site, no_rejoin, widget, page
):
    widget.say("before the restart")
    widget.expect_agent_reply("You said: before the restart")
    ended = asyncio.run_coroutine_threadsafe(lifecycle.registry.stop_all(), live_site.server.loop)
    assert ended.result(timeout=10) == 1
    widget.expect_state("error")
    expect(widget.notice).to_contain_text(str(ERRORS["restarting"]))
    page.locator("webcall-widget .notice button", has_text=str(UI["retry"])).click()
    widget.expect_state("live")
    widget.say("after the restart")
    widget.expect_agent_reply("You said: after the restart")
    first, second = Call.objects.order_by("created_at")
    assert (first.status, first.end_reason) == (CallStatus.ENDED, "relay-stopped")
    assert second.status == CallStatus.LIVE


def test_a_dropped_socket_without_a_resume_says_the_connection_was_lost(live_site, page):
    Agent.objects.filter(slug="echo").update(resume_seconds=0)  # calls end with their socket
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.start_text_chat()
    page.evaluate(
        """() => new Promise((resolve) => {
          document.addEventListener('webcall:error', (e) => resolve(e.detail), { once: true });
          const widget = window.WebcallWidget.get();
          widget.connection.socket.close(4000);
        })"""
    )
    widget.expect_state("error")
    expect(widget.notice).to_contain_text(str(ERRORS["dropped"]))


def test_unknown_agent_renders_nothing_and_explains_on_the_console(live_site, page):
    # The widget gives up with this warning, before it would build anything.
    with page.expect_console_message(lambda m: "agent_not_found" in m.text, timeout=TIMEOUT):
        page.goto(live_site.url + "/?agent=nobody")
    expect(page.locator("webcall-widget .launcher")).to_have_count(0)


def test_the_transcript_follows_new_messages(live_site, page):
    page.set_viewport_size({"width": 1280, "height": 600})
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.start_text_chat()
    for n in range(8):
        widget.say(f"message number {n} with enough words to take some room")
        widget.expect_agent_reply(
            f"You said: message number {n} with enough words to take some room"
        )
    at_bottom = page.evaluate(
        """() => {
          const root = document.querySelector('webcall-widget').shadowRoot;
          const list = root.querySelector('.transcript');
          return list.scrollHeight > list.clientHeight
            && list.scrollHeight - list.scrollTop - list.clientHeight < 4;
        }"""
    )
    assert at_bottom


# conversations that survive reloads, other pages and dropped connections


def test_a_closed_panel_stays_closed_after_a_reload(widget, page):
    widget.launcher.click()  # close it
    expect(widget.panel).to_be_hidden()
    page.reload()
    widget = WidgetOnPage(page).wait_loaded()
    widget.expect_state("live")
    expect(widget.panel).to_be_hidden()
    widget.launcher.click()
    expect(widget.messages("agent")).to_have_count(1)


def test_a_connection_lost_for_a_few_seconds_comes_back_and_loses_nothing(widget, page):
    widget.say("first")
    widget.expect_agent_reply("You said: first")
    page.context.set_offline(True)
    widget.expect_state("reconnecting")
    expect(page.locator("webcall-widget .status")).to_have_text(str(UI["stateReconnecting"]))
    widget.say("typed while offline")
    pending = page.locator("webcall-widget .message--pending")
    expect(pending).to_contain_text(str(UI["pending"]))
    page.wait_for_timeout(3000)
    page.context.set_offline(False)
    widget.expect_state("live")
    widget.expect_agent_reply("You said: typed while offline")
    expect(pending).to_have_count(0)
    expect(widget.messages("user")).to_have_text(["first", "typed while offline"])
    expect(widget.messages("agent")).to_have_count(3)  # the greeting and two replies, once each
    call = Call.objects.get()
    assert call.status == CallStatus.LIVE
    assert list(call.messages.filter(role="user").values_list("text", flat=True)) == [
        "first",
        "typed while offline",
    ]


def test_a_reply_that_came_while_reconnecting_is_announced_and_sent_as_an_event(widget, page):
    """The agent finished its reply while the visitor's connection was down: the replay
    brings it, and it is news to this page (a screen reader hears it, the page's
    ``webcall:message`` listeners get it), not a conversation shown again."""
    page.evaluate(
        """() => {
          window.__finals = [];
          document.addEventListener('webcall:message', (e) => {
            if (e.detail.final) window.__finals.push([e.detail.role, e.detail.text]);
          });
        }"""
    )
    typed = " ".join(f"word{n}" for n in range(25))  # a reply that takes a second to come
    widget.say(typed)
    expect(page.locator("webcall-widget .message--partial")).to_be_visible(timeout=TIMEOUT)
    page.context.set_offline(True)
    widget.expect_state("reconnecting")
    reply = f"You said: {typed}"
    written = TranscriptMessage.objects.filter(role="agent", text=reply, final=True)
    for _ in range(100):
        if written.exists():
            break
        page.wait_for_timeout(100)
    assert written.exists(), "the relay never wrote the reply"
    page.context.set_offline(False)
    widget.expect_state("live")
    widget.expect_agent_reply(reply)
    expect(page.locator("webcall-widget .announcer")).to_have_text(f"Echo assistant says: {reply}")
    assert page.evaluate("window.__finals") == [["user", typed], ["agent", reply]]  # once each


def test_a_connection_lost_past_the_grace_period_says_the_conversation_ended(live_site, page):
    Agent.objects.filter(slug="echo").update(resume_seconds=2)
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page).wait_loaded()
    widget.start_text_chat()
    page.context.set_offline(True)
    widget.expect_state("reconnecting")
    widget.say("never sent")
    widget.expect_state("ended")
    expect(widget.notice).to_contain_text(str(ERRORS["lost_while_away"]))
    expect(page.locator("webcall-widget .status")).to_have_text(str(UI["stateEnded"]))
    expect(page.locator("webcall-widget .message--unsent")).to_contain_text(str(UI["unsent"]))
    page.context.set_offline(False)
    page.wait_for_timeout(1000)
    widget.expect_state("ended")
    call = ended_call(page)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "visitor-disconnected")
    assert page.evaluate("Object.keys(sessionStorage)") == []  # nothing left to resume


def test_hanging_up_while_reconnecting_ends_the_call_as_soon_as_the_connection_is_back(
    widget, page
):
    """The visitor hangs up while the widget says "Reconnecting…": the conversation ends on
    the page at once, with nothing left for another page to take up, and the call ends as
    the visitor's own hang-up once the widget is back in touch, not 20 s later as a visitor
    who went away (VoiceHub counts those seconds)."""
    widget.say("first")
    widget.expect_agent_reply("You said: first")
    page.context.set_offline(True)
    widget.expect_state("reconnecting")
    page.get_by_role("button", name=str(UI["end"])).click()
    widget.expect_state("ended")
    assert page.evaluate("Object.keys(sessionStorage)") == []
    page.context.set_offline(False)
    call = ended_call(page)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "visitor-ended")
    widget.expect_state("ended")
    expect(widget.notice).to_be_hidden()  # no word of a lost connection


def test_a_second_tab_takes_the_conversation_over(widget, page, context):
    widget.say("from the first tab")
    widget.expect_agent_reply("You said: from the first tab")
    # A tab duplicated from this one starts with a copy of its sessionStorage.
    storage = page.evaluate("JSON.stringify(Object.entries(sessionStorage))")
    with probed_page(context) as second_page:
        second_page.add_init_script(
            f"for (const [k, v] of {storage}) sessionStorage.setItem(k, v);"
        )
        second_page.goto(page.url)
        second = WidgetOnPage(second_page).wait_loaded()
        second.expect_state("live")
        expect(second.messages("user")).to_have_text(["from the first tab"])
        widget.expect_state("ended")
        expect(widget.notice).to_contain_text(str(ERRORS["taken_over"]))
        second.say("from the second tab")
        second.expect_agent_reply("You said: from the second tab")
        assert Call.objects.get().resumes == 1
