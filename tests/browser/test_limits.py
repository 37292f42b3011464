"""What a visitor sees when limits are hit, and what happens when a tab closes mid-call."""

from __future__ import annotations

import time

from playwright.sync_api import expect

from tests.browser.widget import TIMEOUT, WidgetOnPage
from webcall_widget.models import Agent, Call, CallStatus
from webcall_widget.strings import ERRORS


def start_chat(page, url):
    page.goto(url)
    widget = WidgetOnPage(page).wait_loaded()
    widget.launcher.click()
    page.locator("webcall-widget .start [data-mode=text]").click()
    return widget


def test_all_lines_busy_says_so_and_try_again_works_later(live_site, context):
    Agent.objects.filter(slug="echo").update(max_concurrent_calls=1)
    first = context.new_page()
    start_chat(first, live_site.url + "/").expect_state("live")
    second = context.new_page()
    busy = start_chat(second, live_site.url + "/")
    busy.expect_state("error")
    expect(busy.notice).to_contain_text(str(ERRORS["agent_busy"]))
    first.locator("webcall-widget .footer-actions .link-button").click()  # the line frees
    WidgetOnPage(first).expect_state("ended")
    second.locator("webcall-widget .notice button").click()
    busy.expect_state("live")


def test_too_many_calls_from_one_visitor_are_refused_politely(live_site, page, settings):
    settings.WEBCALL_WIDGET = {
        **settings.WEBCALL_WIDGET,
        "LIMITS": {"CALLS_PER_MINUTE_PER_CLIENT": 1},
    }
    widget = start_chat(page, live_site.url + "/")
    widget.expect_state("live")
    page.locator("webcall-widget .footer-actions .link-button").click()
    widget.expect_state("ended")
    page.locator("webcall-widget .footer-actions .secondary-button").click()
    page.locator("webcall-widget .start [data-mode=text]").click()
    widget.expect_state("error")
    expect(widget.notice).to_contain_text(str(ERRORS["rate_limited"]))


def test_closing_the_tab_mid_call_ends_the_call_upstream_and_in_the_database(live_site, context):
    """Once the grace period for a resume is over (shortened here: a page cannot tell a
    closed tab from a reload)."""
    Agent.objects.filter(slug="echo").update(resume_seconds=1)
    page = context.new_page()
    widget = start_chat(page, live_site.url + "/")
    widget.expect_state("live")
    widget.say("about to leave")
    widget.expect_agent_reply("You said: about to leave")
    sandbox = live_site.sandbox()
    (vh_call,) = sandbox.state.calls
    page.close()
    sandbox.state.wait_for(lambda: sandbox.state.calls[vh_call].ended, timeout=TIMEOUT / 1000)
    call = Call.objects.get()
    deadline = time.monotonic() + TIMEOUT / 1000
    while call.status != CallStatus.ENDED and time.monotonic() < deadline:
        time.sleep(0.1)  # the relay records the end right after the sandbox sees it
        call.refresh_from_db()
    assert call.status == CallStatus.ENDED
    assert call.end_reason in ("visitor-ended", "visitor-disconnected")
    assert ("user", "about to leave") in call.messages.values_list("role", "text")
