"""Chromium: Debian's, driven by Playwright over CDP (Playwright cannot download its own
here). Its microphone is a WAV file (``--use-file-for-fake-audio-capture``), one browser
per sentence; its output needs no device."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright

from tests import canary
from tests.browser.engines.page import RECORD_CSP_VIOLATIONS, Engine, EnginePage, Site
from tests.browser.speech import Speech

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def require_chromium() -> None:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-system-deps (make test does)")


def launch(playwright: Playwright, *extra_args: str) -> Browser:
    """Debian's Chromium (Playwright cannot download its own here)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])


def fake_microphone(playwright: Playwright, wav: Path, *, loop: bool) -> Browser:
    """Chromium whose microphone plays ``wav`` (once, or over and over)."""
    return launch(
        playwright,
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}{'' if loop else '%noloop'}",
    )


class PageProbe:
    """What a page said on its console and which CSP violations it reported."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        self.errors: list[str] = []
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def csp_violations(self) -> list[str]:
        reported = self.page.evaluate("window.__cspViolations || []")
        logged = [line for line in self.console if "Content Security Policy" in line]
        return [*reported, *logged]


def new_context(browser: Browser, **options: Any) -> BrowserContext:
    """A browser context whose every response is shown to the secret canary."""
    context = browser.new_context(
        **{"viewport": {"width": 1280, "height": 800}, "locale": "en-US", **options}
    )
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    context.on("response", _scan_response)
    return context


def _scan_response(response: Any) -> None:
    with contextlib.suppress(Exception):  # redirects and aborted loads have no body
        canary.scan(f"browser response {response.url}", response.body())


def _scan_socket(socket: Any) -> None:
    socket.on("framereceived", lambda payload: canary.scan("browser socket frame", payload))
    socket.on("framesent", lambda payload: canary.scan("browser socket frame", payload))


@contextlib.contextmanager
def probed_page(context: BrowserContext) -> Iterator[Page]:
    """A page whose console is kept; an uncaught error in it fails the test."""
    page = context.new_page()
    page.probe = PageProbe(page)  # type: ignore[attr-defined]
    page.on("websocket", _scan_socket)
    yield page
    if page.probe.errors:  # type: ignore[attr-defined]
        pytest.fail(f"page errors: {page.probe.errors}")  # type: ignore[attr-defined]


class ChromiumPage(EnginePage):
    engine = "chromium"

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.page = context.new_page()
        self.probe = PageProbe(self.page)
        self.page.on("websocket", _scan_socket)

    def goto(self, url: str) -> None:
        self.page.goto(url)

    def reload(self) -> None:
        self.page.reload()

    def call(self, function: str, *args: Any) -> Any:
        return self.page.evaluate(f"(args) => ({function})(...args)", list(args))

    def click(self, selector: str) -> None:
        self.page.locator(selector).click()

    def type(self, selector: str, text: str) -> None:
        self.page.locator(selector).click()
        self.page.keyboard.type(text)

    def press(self, chord: str) -> None:
        self.page.keyboard.press(chord)

    def add_init_script(self, script: str) -> None:
        self.page.add_init_script(script)

    def errors(self) -> list[str]:
        logged = [line for line in self.probe.console if line.startswith("error: ")]
        return [*self.probe.errors, *logged]

    def close(self) -> None:
        self.context.close()


class Chromium(Engine):
    name = "chromium"

    def __init__(self, playwright: Playwright) -> None:
        require_chromium()
        self.playwright = playwright
        self.browsers: dict[Speech | None, Browser] = {}

    def browser(self, microphone: Speech | None) -> Browser:
        if microphone not in self.browsers:
            self.browsers[microphone] = (
                fake_microphone(self.playwright, microphone.wav, loop=microphone.loop)
                if microphone
                else launch(self.playwright)
            )
        return self.browsers[microphone]

    def version(self) -> str:
        return self.browser(None).version

    def new_page(self, site: Site, *, microphone: Speech | None = None) -> EnginePage:
        context = new_context(self.browser(microphone), permissions=["microphone"])
        return ChromiumPage(context)

    def close(self) -> None:
        for browser in self.browsers.values():
            browser.close()
        self.browsers.clear()
