"""The widget on a page, driven the way a visitor drives it, in any engine (engines/)."""

from __future__ import annotations

from typing import Any

from tests.browser.engines.page import TIMEOUT, EnginePage

VOICE_TIMEOUT = 20.0
WIDGET = "webcall-widget"

# Every webcall:* event, with the page's clock: [name, performance.now(), detail].
RECORD_EVENTS = """(() => {
  window.__events = [];
  for (const name of ['ready', 'message', 'state', 'error', 'interrupt']) {
    document.addEventListener('webcall:' + name,
      (e) => window.__events.push([name, performance.now(), e.detail]));
  }
})()"""

# Measures what the widget really plays: an AnalyserNode on its playback worklet's output.
LISTEN = """() => {
  const voice = window.WebcallWidget.get().voice;
  const analyser = voice.context.createAnalyser();
  analyser.fftSize = 1024;
  voice.playback.connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  window.__heard = [];
  window.__voice = voice;
  window.__listening = setInterval(() => {
    analyser.getFloatTimeDomainData(data);
    let peak = 0;
    for (const v of data) peak = Math.max(peak, Math.abs(v));
    window.__heard.push([performance.now(), peak]);
  }, 20);
}"""

# The playback processor's counters, asked for on its port as the widget does not.
STATS = """() => new Promise((resolve) => {
  const port = window.__voice.playback.port;
  port.addEventListener('message', (e) => e.data.type === 'stats' && resolve(e.data));
  port.postMessage({ type: 'stats' });
})"""

MESSAGE = """(role, prefix, after) => (window.__events || []).find(([name, at, d]) =>
  name === 'message' && at > after && d.role === role && d.final && d.text.startsWith(prefix))"""

LOUDEST = """(since, until) => Math.max(0, ...window.__heard
  .filter(([t]) => t >= since && (until === null || t <= until))
  .map(([, peak]) => peak))"""


def inside(selector: str) -> str:
    return f"{WIDGET} {selector}"


class Visitor:
    def __init__(self, page: EnginePage) -> None:
        self.page = page
        self.launcher = inside(".launcher")
        self.panel = inside(".panel")
        self.input = inside(".input")
        self.notice = inside(".notice")
        self.root = inside(".root")

    def wait_loaded(self) -> Visitor:
        self.page.wait_for_selector(self.launcher)
        return self

    def state(self) -> str | None:
        return self.page.attribute(self.root, "data-state")

    def expect_state(self, state: str, timeout: float = TIMEOUT) -> None:
        self.page.expect_attribute(self.root, "data-state", state, timeout=timeout)

    def open(self) -> None:
        """Open the panel (if it is closed)."""
        if not self.page.is_visible(self.panel):
            self.page.click(self.launcher)
            self.page.wait_for_selector(self.panel)

    def choose(self, mode: str) -> None:
        """Click the start button of ``mode`` (``text``, ``WebAudio`` or ``TextAudio``)."""
        self.page.click(inside(f".start [data-mode={mode}]"))

    def start(self, mode: str) -> None:
        self.open()
        self.choose(mode)
        self.expect_state("live")

    def start_text_chat(self) -> None:
        self.start("text")
        self.page.wait_for_selector(inside(".message--agent .text"))

    def say(self, text: str) -> None:
        self.page.type(self.input, text)
        self.page.press("Enter")

    def messages(self, role: str | None = None) -> str:
        """The selector of the messages' texts (of ``role``: ``user`` or ``agent``)."""
        kind = f".message--{role}" if role else ".message"
        return inside(f"{kind} .text")

    def expect_agent_reply(self, text: str) -> None:
        """The agent's latest finished message says ``text``."""
        self.page.wait_for(
            """(text) => {
              const replies = document.querySelector('webcall-widget').shadowRoot
                .querySelectorAll('.message--agent:not(.message--partial) .text')
              return replies.length && replies[replies.length - 1].textContent === text
            }""",
            text,
            message=f"the agent never replied {text!r}",
        )

    # voice (the page runs RECORD_EVENTS)

    def wait_for_message(
        self, role: str, starts_with: str, *, after: float = 0, timeout: float = VOICE_TIMEOUT
    ) -> list[Any]:
        """The first finished message of ``role`` starting with ``starts_with`` after
        ``after`` (the page's clock): ``[name, at, detail]``."""
        found: list[Any] = self.page.wait_for(
            MESSAGE,
            role,
            starts_with,
            after,
            timeout=timeout,
            message=f"no {role} message starting {starts_with!r}",
        )
        return found

    def wait_for_event(self, name: str, *, after: float, timeout: float = VOICE_TIMEOUT) -> Any:
        return self.page.wait_for(
            "(name, after) => window.__events.find(([n, at]) => n === name && at > after)",
            name,
            after,
            timeout=timeout,
            message=f"no {name} event",
        )

    def listen(self) -> None:
        """From now on, measure what the widget plays (``loudest``)."""
        self.page.call(LISTEN)

    def loudest(self, since: float, until: float | None = None) -> float:
        return float(self.page.call(LOUDEST, since, until))

    def playback_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.page.call(STATS)
        return stats
