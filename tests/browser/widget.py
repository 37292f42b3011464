"""Helpers that drive the widget the way a visitor does (Playwright pierces open shadow roots)."""

from __future__ import annotations

from playwright.sync_api import FloatRect, Locator, Page, expect

TIMEOUT = 10_000


def bounds(locator: Locator) -> FloatRect:
    """Where ``locator``'s element is drawn on the page; it fails the test when it is not."""
    drawn = locator.bounding_box()
    assert drawn is not None, f"{locator} is not drawn"
    return drawn


class WidgetOnPage:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.host = page.locator("webcall-widget")
        self.launcher = page.locator("webcall-widget .launcher")
        self.panel = page.locator("webcall-widget .panel")
        self.input = page.locator("webcall-widget .input")
        self.notice = page.locator("webcall-widget .notice")
        self.root = page.locator("webcall-widget .root")

    def wait_loaded(self) -> WidgetOnPage:
        expect(self.launcher).to_be_visible(timeout=TIMEOUT)
        return self

    def state(self) -> str | None:
        return self.root.get_attribute("data-state")

    def expect_state(self, state: str) -> None:
        expect(self.root).to_have_attribute("data-state", state, timeout=TIMEOUT)

    def messages(self, role: str | None = None) -> Locator:
        selector = "webcall-widget .message"
        if role:
            selector += f".message--{'user' if role == 'user' else 'agent'}"
        return self.page.locator(selector + " .text")

    def start_text_chat(self) -> None:
        self.launcher.click()
        self.page.locator("webcall-widget .start [data-mode=text]").click()
        self.expect_state("live")
        expect(self.messages("agent").first).to_be_visible(timeout=TIMEOUT)

    def say(self, text: str) -> None:
        self.input.fill(text)
        self.input.press("Enter")

    @property
    def last_agent_reply(self) -> Locator:
        """The text of the agent's latest finished message."""
        return self.page.locator(
            "webcall-widget .message--agent:not(.message--partial) .text"
        ).last

    def expect_agent_reply(self, text: str) -> None:
        expect(self.last_agent_reply).to_have_text(text, timeout=TIMEOUT)
