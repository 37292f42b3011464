from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import hypothesis
import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from tests.clocks import HandClock
from tests.factories import build_agent
from tests.servers import ServerThread
from webcall_widget.models import Agent
from webcall_widget.relay.consumer import RelayConsumer
from webcall_widget.relay.process import RelayProcess
from webcall_widget.sandbox import Sandbox
from webcall_widget.sandbox.config import SANDBOX_API_KEY, SandboxConfig

if TYPE_CHECKING:
    from tests.chaos import Backing

(Path(__file__).parent / ".artifacts").mkdir(exist_ok=True)

# Hypothesis: the same examples on every run by default, so CI is repeatable; run with
# --hypothesis-profile=explore (and more examples) to search new ground.
hypothesis.settings.register_profile("ci", derandomize=True, database=None)
hypothesis.settings.register_profile("explore", max_examples=500, database=None)
hypothesis.settings.load_profile("ci")


UNGROUPED = pytest.StashKey[str]()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup``, the tests of an ``xdist_group`` that pytest-xdist did not
    keep to one worker fail, saying why: the modules that share servers, a file the
    autoreloader watches or the chaos tests' CPU would otherwise run side by side and fail
    now and then, far from the cause (pytest 9.2 with pytest-xdist 3.8: pytest-xdist#1386)."""
    if not config.getoption("loadgroup", False):  # set by xdist on its workers
        return
    for item in items:
        if item.get_closest_marker("xdist_group") and "@" not in item.nodeid.rpartition("]")[2]:
            item.stash[UNGROUPED] = (
                f"pytest-xdist did not keep this test's xdist_group to one worker under "
                f"pytest {pytest.__version__}: install the pytest that pyproject.toml's "
                "test extra allows (make install)."
            )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if UNGROUPED in item.stash:
        pytest.fail(item.stash[UNGROUPED], pytrace=False)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None,
) -> Iterator[None]:
    """On PostgreSQL, a server to create the test database on: the configured one, or a
    throwaway cluster when nothing answers there (tests/postgres.py)."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        yield
        return
    from tests.postgres import ensure_server

    cluster = ensure_server(database)
    yield
    if cluster is not None:
        cluster.stop()


@pytest.fixture(scope="session", autouse=True)
def _secret_canary() -> Iterator[None]:
    """Arm the canary (tests/canary.py) for the whole session."""
    from django.db.models.signals import post_save

    from tests import canary

    canary.register(SANDBOX_API_KEY)
    canary.register("sandbox-key-no-credits")
    post_save.connect(canary.remember_agent_key, sender=Agent, weak=False, dispatch_uid="canary")
    canary.scan_relay_frames()
    handler = canary.LogCanary(level=logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    ours = logging.getLogger("webcall_widget")
    previous_level = ours.level
    ours.setLevel(logging.DEBUG)
    yield
    ours.setLevel(previous_level)
    root.removeHandler(handler)
    post_save.disconnect(sender=Agent, dispatch_uid="canary")


@pytest.fixture(autouse=True)
def _no_secret_leaked(request: pytest.FixtureRequest) -> Iterator[None]:
    from tests import canary

    before = len(canary.LEAKS)
    yield
    leaked = canary.LEAKS[before:]
    if leaked:
        del canary.LEAKS[before:]
        pytest.fail("an API key was shown:\n" + "\n".join(leaked), pytrace=False)


@pytest.fixture(autouse=True)
def _close_executor_connections() -> Iterator[None]:
    """Close the database connection of asgiref's shared sync thread after each test.

    Outside ``async_to_sync`` (pytest-asyncio runs tests on a plain event loop), Django's
    async test client runs views in that one thread, and it keeps their connection open,
    as a test client does. On PostgreSQL an open connection holds the test database:
    dropping it at the end of the run would fail."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    # From a thread with no event loop (Playwright keeps one running in this one), a
    # thread-sensitive sync_to_async with no async_to_sync around it runs in that shared
    # thread, whatever asgiref calls it.
    closing = threading.Thread(
        target=asyncio.run, args=(sync_to_async(connections.close_all)(),), daemon=True
    )
    closing.start()
    closing.join(timeout=10)


@pytest.fixture(autouse=True)
def _analysis_fetches_done() -> Iterator[None]:
    """A test that queued analysis fetches (webhooks) ends only when they are done, so no
    fetch thread outlives it."""
    yield
    from webcall_widget.webhooks.worker import fetcher

    assert fetcher.wait_idle(timeout=30), "analysis fetches still running after the test"


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Rate-limit windows live in the cache: each test starts with none counted. The relay
    process that serves a live server from test to test keeps its lease: to a process that
    renews it, a lease gone is a Redis restart, after which it holds off other processes'
    calls for a lease period (sending their resumes to try again)."""
    from django.core.cache import cache

    cache.clear()
    _keep_lease()
    yield
    cache.clear()
    _keep_lease()


def _keep_lease() -> None:
    from webcall_widget import leases
    from webcall_widget.relay.process import current

    if current._renewed:
        leases.renew(
            current.id, draining=current.draining, at=time.time(), seconds=current.lease_seconds
        )


@pytest.fixture(autouse=True)
def rate_minute() -> Iterator[HandClock]:
    """Rate windows are whole minutes of the wall clock: a test's burst of calls that
    straddled two of them would be counted in both. Each test starts mid-minute with the
    clock held; a test that wants the next minute moves it."""
    from webcall_widget import limits

    held = HandClock(time.time() // 60 * 60 + 30)
    with limits.rate_clock(held):
        yield held


@pytest.fixture(scope="module")
def backing() -> Iterator[Backing]:
    """PostgreSQL and Redis of the module's own, for the deployment its chaos tests break
    (tests/chaos.py): never the machine's shared servers, since they restart them."""
    from tests.chaos import Backing

    with Backing() as running:
        yield running


class RunningSandbox:
    """The sandbox served on a real port, with what it recorded."""

    def __init__(self, app: Sandbox, server: ServerThread) -> None:
        self.app = app
        self.server = server
        self.state = app.state
        self.url = server.url

    @property
    def faults(self) -> Any:
        return self.state.faults


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[RunningSandbox]:
    # Heartbeats every second: a stalled socket is noticed within 3 s.
    # Webhooks (when a test points them somewhere) are retried within a second.
    app = Sandbox(
        SandboxConfig(
            word_delay=0.0,
            ping_interval=1,
            ping_timeout=2,
            webhook_retry_delays=(0.05, 0.1, 0.2, 0.4),
            webhook_timeout=5.0,
        )
    )
    with ServerThread(app, name="sandbox") as server:
        yield RunningSandbox(app, server)


@pytest.fixture(scope="session")
def variant_servers() -> Iterator[Callable[[str], RunningSandbox]]:
    """Sandboxes speaking the protocol variants of webcall_widget/sandbox/variants.py, one
    server per variant, each started the first time a test asks for it."""
    from webcall_widget.sandbox.variants import variant_config

    running: dict[str, RunningSandbox] = {}
    with contextlib.ExitStack() as stack:

        def get(name: str) -> RunningSandbox:
            if name not in running:
                base = SandboxConfig(word_delay=0.0, ping_interval=1, ping_timeout=2)
                app = Sandbox(variant_config(name, base))
                server = stack.enter_context(ServerThread(app, name=f"sandbox-{name}"))
                running[name] = RunningSandbox(app, server)
            return running[name]

        yield get


@pytest.fixture
def variant_sandbox(
    variant_servers: Callable[[str], RunningSandbox], settings: Any
) -> Iterator[Callable[..., RunningSandbox]]:
    """``use(name, upstream=None)``: a clean sandbox speaking variant ``name``, with the app's
    upstream pointed at it and set to ``upstream`` (default: the variant's own settings)."""
    from webcall_widget.sandbox.variants import variant_settings

    used: list[RunningSandbox] = []

    def use(name: str, upstream: dict[str, Any] | None = None) -> RunningSandbox:
        running = variant_servers(name)
        running.state.reset()
        used.append(running)
        protocol = variant_settings(name) if upstream is None else upstream
        settings.WEBCALL_WIDGET = {
            "UPSTREAM": {
                "CONNECT_TIMEOUT": 5,
                "JOIN_TIMEOUT": 5,
                **protocol,
                "URL": running.url,
            }
        }
        return running

    yield use
    for running in used:
        running.state.reset()


@pytest.fixture
def sandbox(sandbox_server: RunningSandbox, settings: Any) -> Iterator[RunningSandbox]:
    """A clean sandbox, and the app's upstream pointed at it. Calls end as soon as their
    socket closes (``RESUME_SECONDS`` 0); the tests of resuming turn it on."""
    sandbox_server.state.reset()
    settings.WEBCALL_WIDGET = {
        "UPSTREAM": {"URL": sandbox_server.url, "CONNECT_TIMEOUT": 5, "JOIN_TIMEOUT": 5},
        "RESUME_SECONDS": 0,
    }
    yield sandbox_server
    sandbox_server.state.reset()


@pytest.fixture
def agent_factory(db: None) -> Callable[..., Agent]:
    """Saves a :func:`tests.factories.build_agent`."""

    def make(**overrides: Any) -> Agent:
        agent = build_agent(**overrides)
        agent.save(force_insert=True)
        return agent

    return make


@pytest.fixture
def agent(agent_factory: Callable[..., Agent]) -> Agent:
    return agent_factory()


async def create_call(
    async_client: Any, slug: str, mode: str | None = "text", *, origin: str | None = None
) -> Any:
    body = {} if mode is None else {"mode": mode}
    headers = {"origin": origin} if origin else {}
    return await async_client.post(
        f"/webcall/agents/{slug}/calls",
        data=json.dumps(body),
        content_type="application/json",
        headers=headers,
    )


def socket_path(response: Any) -> str:
    return urlsplit(response.json()["socket"]).path


def relay_app(consumer: type[RelayConsumer] = RelayConsumer, **options: Any) -> Any:
    """The relay's route alone, its consumer given ``options`` (``RelayConsumer``'s)."""
    from webcall_widget.routing import relay_patterns

    return URLRouter(relay_patterns(consumer.as_asgi(**options)))


def another_process(consumer: type[RelayConsumer] = RelayConsumer, **options: Any) -> Any:
    """The relay of a second process, in this one: a registry of calls of its own (so it
    holds none of this process's calls) and the channel layer they share."""
    return relay_app(consumer, process=RelayProcess(), **options)


@pytest.fixture
async def open_socket() -> AsyncIterator[Callable[..., WebsocketCommunicator]]:
    """Communicators on the package's own routing; all are disconnected at teardown."""
    from webcall_widget.routing import websocket_urlpatterns

    opened: list[WebsocketCommunicator] = []

    def _open(
        path: str, *, origin: str | None = "http://testserver", application: Any = None
    ) -> WebsocketCommunicator:
        """``application``: another relay (:func:`relay_app`, :func:`another_process`)."""
        headers = [(b"host", b"testserver")]
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        communicator = WebsocketCommunicator(
            application or URLRouter(websocket_urlpatterns), path, headers=headers
        )
        opened.append(communicator)
        return communicator

    yield _open
    # A receive that timed out has already cancelled its app: disconnecting it again would
    # raise CancelledError, which pytest does not catch in teardown, so the finalizers after
    # this one (settings restored, sandbox reset) would never run and every later test fail.
    errors: list[BaseException] = []
    for communicator in opened:
        if communicator.future.cancelled():
            continue
        try:
            await communicator.disconnect(timeout=5)
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture
def no_rejoin(settings: Any) -> None:
    """VoiceHub does not let a second socket join a call under way (UPSTREAM.REJOIN
    "never"): a call ends with the process that holds it, as a server stop."""
    current = getattr(settings, "WEBCALL_WIDGET", {})
    upstream = {**current.get("UPSTREAM", {}), "REJOIN": "never"}
    settings.WEBCALL_WIDGET = {**current, "UPSTREAM": upstream}
