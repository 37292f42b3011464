"""The JavaScript API and the DOM events on the host element."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.browser.widget import TIMEOUT, WidgetOnPage

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "api.js"

RECORD_EVENTS = """
  window.__events = [];
  for (const name of ['ready', 'message', 'state', 'error']) {
    document.addEventListener('webcall:' + name, (e) => window.__events.push([name, e.detail]));
  }
"""


def events(page, name):
    return [detail for kind, detail in page.evaluate("window.__events") if kind == name]


def test_the_documented_example_queues_commands_and_hears_the_events(live_site, page):
    """docs/examples/api.js, as the embedding page shows it, run before the embed script."""
    logged: list[str] = []
    page.on("console", lambda message: logged.append(message.text))
    page.add_init_script(EXAMPLE.read_text())
    page.goto(live_site.url + "/")
    widget = WidgetOnPage(page)
    widget.expect_state("live")
    expect(widget.panel).to_be_visible()  # start opens the panel
    expect(widget.last_agent_reply).to_contain_text("Hi! I'm the sandbox echo agent")

    def greeted() -> bool:
        return any(line.startswith("agent: Hi! I'm the sandbox") for line in logged)

    for _ in range(100):  # the console's messages reach Python as the page's events are read
        if greeted():
            break
        page.wait_for_timeout(50)
    assert greeted()
    assert "widget idle -> connecting" in logged
    assert "widget connecting -> live" in logged
    (live,) = [line for line in logged if line.startswith("call ")]
    assert live.endswith(" is live (text)")


def test_api_drives_a_conversation_and_events_report_it(live_site, page):
    page.add_init_script(RECORD_EVENTS)
    page.goto(live_site.url + "/")
    WidgetOnPage(page).wait_loaded()
    page.evaluate("() => window.WebcallWidget.start('text')")
    widget = WidgetOnPage(page)
    widget.expect_state("live")
    page.evaluate("() => window.WebcallWidget.send('sent by the page')")
    widget.expect_agent_reply("You said: sent by the page")
    (ready,) = events(page, "ready")
    assert ready["mode"] == "text" and ready["agent"] == "echo" and ready["call"]
    messages = [(m["role"], m["text"], m["final"]) for m in events(page, "message")]
    assert ("user", "sent by the page", True) in messages
    assert ("agent", "You said: sent by the page", True) in messages
    page.evaluate("() => window.WebcallWidget.end()")
    widget.expect_state("ended")
    states = [s["state"] for s in events(page, "state")]
    assert states == ["connecting", "live", "ending", "ended"]
    page.evaluate("() => window.WebcallWidget.close()")
    expect(widget.panel).to_be_hidden()
    page.evaluate("() => window.WebcallWidget.open()")
    expect(widget.panel).to_be_visible()


def test_error_event_carries_the_code_and_the_visitor_message(live_site, page):
    live_site.sandbox().state.faults.create_status = 500
    page.add_init_script(RECORD_EVENTS)
    page.goto(live_site.url + "/")
    WidgetOnPage(page).wait_loaded()
    page.evaluate("() => window.WebcallWidget.start()")
    page.wait_for_function("() => window.__events.some(([k]) => k === 'error')", timeout=TIMEOUT)
    (error,) = events(page, "error")
    assert error["code"] == "upstream_unavailable"
    assert "not responding" in error["message"]


def test_only_one_global_is_defined(live_site, page):
    page.goto(live_site.url + "/admin/login/")  # same origin, no widget
    before = set(page.evaluate("() => Object.keys(window)"))
    page.goto(live_site.url + "/")
    WidgetOnPage(page).wait_loaded()
    after = set(page.evaluate("() => Object.keys(window)"))
    assert after - before == {"WebcallWidget"}


def test_send_before_the_call_is_live_is_refused(live_site, page):
    page.goto(live_site.url + "/")
    WidgetOnPage(page).wait_loaded()
    assert page.evaluate("() => window.WebcallWidget.send('too early')") is False
