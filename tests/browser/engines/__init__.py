"""The browser suite's three engines: Chromium, Firefox and WebKit (Safari's engine).

A scenario is written once against ``EnginePage`` (page.py) and runs in each engine
(``engine`` fixture, tests/browser/conftest.py). Each engine is started at the first test
that needs it and stopped after the last, with what it needs around it (services.py).
"""

from __future__ import annotations

from playwright.sync_api import Playwright

from tests.browser.engines.chromium import Chromium
from tests.browser.engines.firefox import Firefox
from tests.browser.engines.page import Engine
from tests.browser.engines.services import Display, SoundServer
from tests.browser.engines.webkit import WebKit

ENGINES = ("chromium", "firefox", "webkit")


class Engines:
    """The engines started so far, and the display and sound server they share."""

    def __init__(self, playwright: Playwright) -> None:
        self.playwright = playwright
        self.running: dict[str, Engine] = {}
        self.display: Display | None = None
        self.sound: SoundServer | None = None

    def get(self, name: str) -> Engine:
        if name not in self.running:
            self.running[name] = self._start(name)
        return self.running[name]

    def _start(self, name: str) -> Engine:
        if name == "chromium":
            return Chromium(self.playwright)
        self.sound = self.sound or SoundServer().start()
        if name == "firefox":
            return Firefox(self.sound)
        if name == "webkit":
            self.display = self.display or Display().start()
            return WebKit(self.display, self.sound)
        raise ValueError(f"no engine {name!r}: one of {', '.join(ENGINES)}")

    def close(self) -> None:
        for engine in self.running.values():
            engine.close()
        self.running.clear()
        for service in (self.display, self.sound):
            if service:
                service.stop()
        self.display = self.sound = None
