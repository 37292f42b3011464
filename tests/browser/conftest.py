"""Browser tests: Debian's Chromium driven by Playwright for Python.

The site under test is the demo site (demo/urls.py, demo/templates/ and demo/static/)
composed as tests/asgi.py composes it, with the VoiceHub sandbox mounted on it as
the default upstream, served by uvicorn on a real port.

Playwright's sync API keeps an event loop running in the main thread for as long as the
browser is open (microsoft/playwright-python#439). Django then refuses every ORM call in
that thread, including pytest-django's own database teardown. So, for the tests in this
folder only, ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set (no coroutine of ours runs in that
thread), and the browser is package-scoped: it is closed, and its loop with it, before
the tests in other folders run their own event loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.management import call_command
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from demo.management.commands.seed_demo import Command as SeedDemo
from tests import canary
from tests.servers import ServerThread
from webcall_widget.relay import lifecycle

ROOT = Path(__file__).resolve().parent.parent.parent
SCREENSHOTS = ROOT / "docs" / "screenshots"
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-system-deps (make test does)")
    with sync_playwright() as running:
        yield running


def launch(playwright: Playwright, *extra_args: str) -> Browser:
    """Debian's Chromium (Playwright cannot download its own here)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = launch(playwright)
    yield browser
    browser.close()


@pytest.fixture
def demo_settings(settings: Any) -> Any:
    settings.ROOT_URLCONF = "demo.urls"
    # The demo app's own templates and static files, without installing the app mid-run.
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [ROOT / "demo" / "templates"]}]
    settings.STATICFILES_DIRS = [ROOT / "demo" / "static"]
    settings.WEBCALL_WIDGET = {"SANDBOX": {"ENABLED": True}}
    return settings


class LiveSite:
    def __init__(self, server: ServerThread, requests: list[tuple[str, str]]) -> None:
        self.server = server
        self.url = server.url
        self.requests = requests  # (scope type, path) of everything the site was asked for

    def sandbox(self) -> Any:
        from webcall_widget.sandbox.app import mounted_sandbox

        return mounted_sandbox()


@pytest.fixture
def static_files() -> Callable[[Any], Any]:
    """What serves the static files in front of the site: Django's development handler
    (a test module overrides this fixture to serve them another way)."""
    return ASGIStaticFilesHandler


@pytest.fixture
def live_site(
    demo_settings: Any, transactional_db: None, static_files: Callable[[Any], Any]
) -> Iterator[LiveSite]:
    """The demo site with its seeded ``echo`` agent, on a real port."""
    call_command(SeedDemo(), stdout=io.StringIO())
    from tests.asgi import application
    from webcall_widget.sandbox.app import mounted_sandbox

    sandbox = mounted_sandbox()
    sandbox.state.reset()
    requests: list[tuple[str, str]] = []
    static_and_site = static_files(application)

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            requests.append((scope["type"], scope["path"]))
        await static_and_site(scope, receive, send)

    with ServerThread(recording, name="live-demo") as server:
        yield LiveSite(server, requests)
        # Pages closed by the test leave their calls waiting for a resume (RESUME_SECONDS):
        # end them as a server stop does, while the sandbox still answers.
        assert server.loop is not None
        asyncio.run_coroutine_threadsafe(lifecycle.registry.stop_all(), server.loop).result(
            timeout=20
        )
    sandbox.state.reset()


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


RECORD_CSP_VIOLATIONS = (
    "document.addEventListener('securitypolicyviolation', (e) => {"
    " (window.__cspViolations = window.__cspViolations || [])"
    ".push(e.violatedDirective + ' ' + e.blockedURI); });"
)


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


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = new_context(browser)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    with probed_page(context) as page:
        yield page


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
