"""What a visitor sees when the worker that holds their call goes: SIGKILLed (the
out-of-memory killer, a host lost), or stopped in a rolling restart.

Debian's Chromium visits the deployment page's site (tests/chaos.py: two Uvicorn workers
behind nginx with docs/examples/nginx.conf, PostgreSQL and Redis of its own, the VoiceHub
sandbox in a process of its own, which lets a call be joined again), and the visitor keeps
typing while the worker goes. For a text call, and for a voice-and-text call with the
microphone on (the loopback agent plays every frame straight back), what must hold is:

* the widget says "Reconnecting…" for a moment, then is back to normal: online, no notice;
* the conversation shows every message once, in order, each answered, and reads as the
  database stores it; none is left waiting or marked not sent;
* agent audio plays again after the move, with no click: the page's audio never stopped,
  so Chromium needs no new gesture.

tests/test_chaos.py breaks the same site under many visitors speaking the wire protocol;
these are one visitor's eyes and ears. How long the widget says it is reconnecting is
printed; the bound asserted is far above it.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.browser.speech import SPOKEN_AGAIN_AND_AGAIN
from tests.browser.visitor import RECORD_EVENTS, Visitor, inside
from tests.chaos import GREETING, MARKS, Backing, ChaosSite, both_workers_after, figures
from webcall_widget.strings import UI

pytestmark = [*MARKS, pytest.mark.engines("chromium"), pytest.mark.timeout(240)]

CALLS = pytest.mark.parametrize(
    "agent, mode", [("chat", "text"), ("voice", "TextAudio")], ids=["text", "voice"]
)
BACK_WITHIN = 15.0  # seconds of "Reconnecting…"; a killed owner costs the attach timeout
ANSWER_WITHIN = 30.0
LOUD = 0.05  # a peak of the widget's output that is speech, not silence
# Uvicorn raises the signal again once it has shut down: a stop by SIGTERM exits with it.
STOPPED = (0, -signal.SIGTERM)

# Each state the widget takes, with what its header says then and whether a notice shows.
RECORD_SHOWN = """(() => {
  window.__shown = [];
  document.addEventListener('webcall:state', (e) => {
    const root = e.target.shadowRoot;
    window.__shown.push({state: e.detail.state, at: performance.now(),
      status: root.querySelector('.status').textContent,
      notice: !root.querySelector('.notice').hidden});
  });
})()"""

SHOWN_SINCE = "(since) => window.__shown.filter((s) => s.at > since)"
RESUMED_SINCE = """(since) => window.__events
  .filter(([name, at, d]) => name === 'ready' && at > since && d.resumed).map(([, at]) => at)"""
AGENT_AUDIO_AFTER = f"""(after) => (window.__heard || [])
  .some(([at, peak]) => at > after && peak > {LOUD})"""
NOW = "() => performance.now()"
SHOWS_ANSWER = """(text) => [...document.querySelector('webcall-widget').shadowRoot
  .querySelectorAll('.message--agent:not(.message--partial) .text')]
  .some((answer) => answer.textContent === text)"""


@pytest.fixture(scope="module")
def deployment(backing: Backing, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosSite]:
    with ChaosSite(backing, tmp_path_factory.mktemp("worker-lost")) as running:
        yield running


class DeployedSite:
    """The deployment as the ``visit`` fixture knows a site (tests/browser/conftest.py):
    its URL, through nginx, and every answer of 400 or more that nginx gave while the test
    ran (from its access log: ``$msec $status ... "$request"``)."""

    def __init__(self, site: ChaosSite) -> None:
        self.url = site.url
        self.head_scripts: list[str] = []  # Chromium runs the tests' scripts itself
        self.log = site.workdir / "nginx-worker-access.log"
        self.start = self.log.stat().st_size

    @property
    def refused(self) -> list[tuple[str, int]]:
        with self.log.open() as log:
            log.seek(self.start)
            lines = log.read().splitlines()
        answers = [(line.rsplit('"', 2)[1], int(line.split(" ", 2)[1])) for line in lines]
        return [(request, status) for request, status in answers if status >= 400]


@pytest.fixture
def live_site(deployment: ChaosSite) -> Iterator[DeployedSite]:
    """The site the ``visit`` fixture opens pages on; both workers serve again after the
    test, whatever it did to them."""
    with both_workers_after(deployment):
        yield DeployedSite(deployment)


def in_a_call(visit: Callable[..., Visitor], agent: str, mode: str) -> Visitor:
    """A visitor in a call to ``agent``, greeted; on a voice call, talking (the microphone
    says a sentence over and over) and hearing the agent."""
    voice = mode != "text"
    visitor = visit(
        f"/?agent={agent}",
        microphone=SPOKEN_AGAIN_AND_AGAIN if voice else None,
        script=f"{RECORD_EVENTS};\n{RECORD_SHOWN}",
    )
    visitor.start(mode)
    visitor.wait_for_message("agent", GREETING)
    if voice:
        visitor.page.wait_for("() => window.WebcallWidget.get().voice.playback !== null")
        visitor.listen()
        hears_the_agent(visitor, after=0)
    return visitor


def hears_the_agent(visitor: Visitor, *, after: float) -> None:
    """Waits until the widget plays agent audio after ``after`` (the page's clock)."""
    visitor.page.wait_for(AGENT_AUDIO_AFTER, after, timeout=20, message="no agent audio played")


def call_of(visitor: Visitor) -> str:
    return str(visitor.page.call("() => window.WebcallWidget.get().connection.call"))


@dataclass
class Typing:
    """A visitor who types a message and waits for its answer, again and again."""

    site: ChaosSite
    visitor: Visitor
    said: list[str] = field(default_factory=list)

    def exchange(self) -> None:
        text = f"message {len(self.said) + 1} ok"
        self.said.append(text)
        self.visitor.say(text)
        try:
            self.visitor.page.wait_for(
                SHOWS_ANSWER, f"You said: {text}", timeout=ANSWER_WITHIN, message="no answer"
            )
        except AssertionError as unanswered:
            raise AssertionError(f"{unanswered}\n{self.story()}") from None

    def story(self) -> str:
        """What the visitor was shown and what the site stored, for a failure's message."""
        page, call = self.visitor.page, call_of(self.visitor)
        shown = page.call(SHOWN_SINCE, 0)
        events = page.call("() => window.__events.filter(([name]) => name !== 'message')")
        lines = page.call(
            "() => [...document.querySelector('webcall-widget').shadowRoot"
            ".querySelectorAll('.message')].map((m) => m.className + ': ' + m.textContent)"
        )
        typed = page.value(self.visitor.input)
        return (
            f"states: {shown}\nevents: {events}\nshown: {lines}\nstill typed: {typed!r}\n"
            f"call: {self.site.call(call)}\nstored: {self.site.transcript(call)}"
        )

    def through(self, going: Callable[[], Any]) -> tuple[float, Any]:
        """An exchange; then ``going`` (in a thread of its own) while the visitor goes on
        until it is done and the widget is back from it; then one more exchange. When
        ``going`` began (the page's clock), and what it answered."""
        page = self.visitor.page
        self.exchange()
        since = float(page.call(NOW))
        with ThreadPoolExecutor(1) as pool:
            gone = pool.submit(going)
            while not gone.done() or not self.back_since(since):
                shown = page.call(SHOWN_SINCE, since)
                assert self.visitor.state() in ("live", "reconnecting"), shown
                self.exchange()
                page.sleep(0.3)
            answer = gone.result()
        self.exchange()
        return since, answer

    def back_since(self, since: float) -> bool:
        shown = self.visitor.page.call(SHOWN_SINCE, since)
        return bool(shown) and shown[-1]["state"] == "live"

    def expected(self) -> list[tuple[str, str]]:
        """The conversation as it should read: the greeting, each message and its answer."""
        lines = [("agent", GREETING)]
        for text in self.said:
            lines += [("user", text), ("agent", f"You said: {text}")]
        return lines


def reconnects(visitor: Visitor, since: float) -> list[float]:
    """How long each "Reconnecting…" since ``since`` lasted, in ms, once each is checked to
    have said so and ended back to normal: online, with no notice."""
    shown = visitor.page.call(SHOWN_SINCE, since)
    states = [s["state"] for s in shown]
    assert states and states == ["reconnecting", "live"] * (len(states) // 2), states
    for gone, back in zip(shown[::2], shown[1::2], strict=True):
        assert gone["status"] == str(UI["stateReconnecting"]), shown
        assert (back["status"], back["notice"]) == (str(UI["stateLive"]), False), shown
    return [back["at"] - gone["at"] for gone, back in zip(shown[::2], shown[1::2], strict=True)]


def assert_whole(site: ChaosSite, visitor: Visitor, typing: Typing) -> None:
    """Every message once, in order, each answered, none waiting or unsent; as stored."""
    page = visitor.page
    expected = typing.expected()
    assert page.texts(visitor.messages()) == [text for _, text in expected]
    assert page.texts(visitor.messages("user")) == typing.said
    assert page.count(inside(".message--pending, .message--unsent")) == 0
    stored = site.transcript(call_of(visitor))
    assert [(role, text) for role, text, _ in stored] == expected
    assert all(final for _, _, final in stored)


def plays_again_without_a_click(visitor: Visitor, since: float) -> None:
    """Agent audio plays after the call's last move, the page's audio running and no
    "turn the sound on" asked of the visitor; the microphone still captures."""
    page = visitor.page
    moved_at = max(page.call(RESUMED_SINCE, since))
    hears_the_agent(visitor, after=moved_at + 500)  # past what was queued before the move
    assert page.call("() => window.WebcallWidget.get().voice.context.state") == "running"
    assert not page.is_visible(inside(".voicebar .secondary-button"))
    assert page.is_visible(inside(".mic"))


def hang_up(site: ChaosSite, visitor: Visitor) -> None:
    """The visitor ends the call, which is recorded as theirs to end."""
    call = call_of(visitor)
    visitor.page.click(inside(".footer-actions .link-button"))
    visitor.expect_state("ended")
    [ended] = site.wait_ended([call], 10).values()
    assert ended["end_reason"] == "visitor-ended"


@CALLS
def test_a_visitor_whose_worker_is_killed_sees_a_moment_of_reconnecting_then_goes_on(
    deployment: ChaosSite, visit: Callable[..., Visitor], agent: str, mode: str
) -> None:
    """The worker that holds the call is SIGKILLed between two messages: its socket
    drops, the widget comes back through nginx to the other worker, which takes the call
    over, and the visitor, typing on, sees one brief reconnect."""
    site, workers = deployment, deployment.workers
    assert workers is not None
    visitor = in_a_call(visit, agent, mode)
    typing = Typing(site, visitor)
    holder = site.worker_of(call_of(visitor))
    assert holder is not None
    since, _ = typing.through(lambda: workers.kill(holder))
    [back_after] = reconnects(visitor, since)
    assert back_after < BACK_WITHIN * 1000
    assert site.worker_of(call_of(visitor)) == 1 - holder
    assert_whole(site, visitor, typing)
    if mode != "text":
        plays_again_without_a_click(visitor, since)
    hang_up(site, visitor)
    print(f"\nSIGKILL, {agent}: reconnecting for {back_after:.0f} ms")


@CALLS
def test_a_visitor_sees_at_most_a_brief_reconnect_through_a_rolling_restart(
    deployment: ChaosSite, visit: Callable[..., Visitor], agent: str, mode: str
) -> None:
    """A deploy: each worker in turn gets SIGTERM, and serves again before the other one
    goes. The call moves each time its worker stops (twice if it was on the first one),
    and the visitor, typing all along, sees each move as a brief reconnect."""
    site, workers = deployment, deployment.workers
    assert workers is not None
    visitor = in_a_call(visit, agent, mode)
    typing = Typing(site, visitor)
    moves = 2 if site.worker_of(call_of(visitor)) == 0 else 1
    since, statuses = typing.through(lambda: [workers.restart_worker(i) for i in range(2)])
    assert all(status in STOPPED for status in statuses), statuses
    back_after = reconnects(visitor, since)
    assert len(back_after) == moves
    assert max(back_after) < BACK_WITHIN * 1000
    assert_whole(site, visitor, typing)
    if mode != "text":
        plays_again_without_a_click(visitor, since)
    hang_up(site, visitor)
    print(
        f"\nrolling restart, {agent}: {moves} moves, reconnecting for {figures(back_after)} ms "
        f"(min / median / max), {len(typing.said)} messages typed"
    )
