"""Browser tests: Debian's Chromium driven by Playwright for Python, and the scenarios that
matter to a visitor in Firefox and WebKit too (the ``engine`` fixture, engines/).

The site under test is the demo site (demo/urls.py, templates/ and static/)
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
import io
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.management import call_command
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from demo.management.commands.seed_demo import Command as SeedDemo
from tests.browser.engines import ENGINES, Engines
from tests.browser.engines.chromium import launch, new_context, probed_page, require_chromium
from tests.browser.engines.head import with_head_scripts
from tests.browser.engines.page import Engine, EnginePage
from tests.browser.speech import Speech
from tests.browser.visitor import Visitor
from tests.browser.voice_start import VOICE_STARTS
from tests.servers import ServerThread
from webcall_widget.relay import lifecycle

ROOT = Path(__file__).resolve().parent.parent.parent
SCREENSHOTS = ROOT / "docs" / "screenshots"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes ``engine`` runs in every engine, or in those its ``engines``
    marker names."""
    if "engine" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("engines")
        names = marker.args if marker else ENGINES
        metafunc.parametrize("engine", names, indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is marked ``browser`` and with its engine's name (``chromium`` for
    the Playwright tests), so that ``-m "browser and not webkit"`` selects by engine."""
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            item.add_marker(getattr(pytest.mark, engine_of(item)))


def engine_of(item: pytest.Item) -> str:
    """The ``engine`` a test runs in, or the engine it is marked with, or Chromium."""
    callspec = getattr(item, "callspec", None)
    if callspec and "engine" in callspec.params:
        return str(callspec.params["engine"])
    return next((name for name in ENGINES if item.get_closest_marker(name)), "chromium")


# How long each engine's tests took (setup, call and teardown), for the summary.
ENGINE_SECONDS: dict[str, float] = defaultdict(float)
ENGINE_TESTS: dict[str, set[str]] = defaultdict(set)
ENGINE_VERSIONS: dict[str, str] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/browser/" in report.nodeid and report.keywords.get("browser"):
        engine = next((name for name in ENGINES if report.keywords.get(name)), "chromium")
        ENGINE_SECONDS[engine] += report.duration
        ENGINE_TESTS[engine].add(report.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ENGINE_SECONDS:
        return
    terminalreporter.section("browser engines")
    for name in ENGINES:
        if name in ENGINE_SECONDS:
            terminalreporter.write_line(
                f"{name}: {len(ENGINE_TESTS[name])} tests in {ENGINE_SECONDS[name]:.0f} s"
                f" ({ENGINE_VERSIONS.get(name, 'version not asked')})"
            )
    for name, starts in VOICE_STARTS.items():
        terminalreporter.write_line(f"{name}, voice starts (ms after the click):")
        for start in starts:
            terminalreporter.write_line(f"  {start}")


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    require_chromium()
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = launch(playwright)
    yield browser
    browser.close()


@pytest.fixture
def demo_settings(settings: Any) -> Any:
    settings.ROOT_URLCONF = "demo.urls"
    # The demo site's templates and static files (top-level templates/ and static/).
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [ROOT / "templates"]}]
    settings.STATICFILES_DIRS = [ROOT / "static"]
    settings.WEBCALL_WIDGET = {"SANDBOX": {"ENABLED": True}}
    return settings


class LiveSite:
    def __init__(
        self,
        server: ServerThread,
        requests: list[tuple[str, str]],
        refused: list[tuple[str, int]],
        head_scripts: list[str],
    ) -> None:
        self.server = server
        self.url = server.url
        self.requests = requests  # (scope type, path) of everything the site was asked for
        self.refused = refused  # (path, status) of every answer of 400 or more
        self.head_scripts = head_scripts  # put at the top of every page (engines/head.py)
        # Close codes for the next start sockets: each is accepted, and closed with its code
        # once its start frame came, as by a server that stopped just after it took it.
        self.cut_starts: list[int] = []

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
    refused: list[tuple[str, int]] = []
    head_scripts: list[str] = []
    static_and_site = with_head_scripts(static_files(application), head_scripts)

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await static_and_site(scope, receive, send)
            return
        requests.append((scope["type"], scope["path"]))

        async def answering(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                refused.append((scope["path"], message["status"]))
            await send(message)

        await static_and_site(scope, receive, answering)

    async def serving(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and "/start/" in scope["path"] and site.cut_starts:
            requests.append((scope["type"], scope["path"]))
            await cut_after_the_start(receive, send, site.cut_starts.pop(0))
            return
        await recording(scope, receive, send)

    with ServerThread(serving, name="live-demo") as server:
        site = LiveSite(server, requests, refused, head_scripts)
        yield site
        # Pages closed by the test leave their calls waiting for a resume (RESUME_SECONDS):
        # end them as a server stop does, while the sandbox still answers.
        assert server.loop is not None
        asyncio.run_coroutine_threadsafe(lifecycle.registry.stop_all(), server.loop).result(
            timeout=20
        )
    sandbox.state.reset()


async def cut_after_the_start(receive: Any, send: Any, code: int) -> None:
    """A start socket accepted, then closed with ``code`` once its start frame came."""
    while (await receive())["type"] != "websocket.connect":
        pass
    await send({"type": "websocket.accept"})
    message = await receive()
    if message["type"] == "websocket.receive":
        await send({"type": "websocket.close", "code": code})


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


@pytest.fixture(scope="package")
def engines(playwright: Playwright) -> Iterator[Engines]:
    """The engines, each started at its first test (Chromium through ``playwright``)."""
    running = Engines(playwright)
    yield running
    running.close()


@pytest.fixture
def engine(request: pytest.FixtureRequest, engines: Engines) -> Iterator[Engine]:
    """The engine this run of the test is in (see ``pytest_generate_tests``)."""
    started = engines.get(request.param)
    yield started
    ENGINE_VERSIONS[started.name] = started.version()


@pytest.fixture
def visit(engine: Engine, live_site: LiveSite) -> Iterator[Callable[..., Visitor]]:
    """Opens a page of the demo site in the test's engine, as a visitor:
    ``visit("/csp/", microphone=SPOKEN_ONCE, script=...)`` (``script`` runs before the
    page's own). The test fails if a page threw or logged an error, or if the site
    answered anything with an error status (a missing favicon, say)."""
    pages: list[EnginePage] = []

    def open_(path: str = "/", *, microphone: Speech | None = None, script: str = "") -> Visitor:
        page = engine.new_page(live_site, microphone=microphone)
        pages.append(page)
        if script:
            page.add_init_script(script)
        page.goto(live_site.url + path)
        return Visitor(page).wait_loaded()

    yield open_
    problems = [f"{page.engine}: {error}" for page in pages for error in page.unexpected_errors()]
    for page in pages:
        page.close()
    if problems:
        pytest.fail(f"page errors: {problems}")
    if live_site.refused:
        pytest.fail(f"the site answered with errors: {live_site.refused}")
