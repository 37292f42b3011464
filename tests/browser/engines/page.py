"""A page in any of the three engines, driven as a visitor drives it.

Each engine implements the few things only a browser driver can do: load a page, run a
script in it, click and type with real input events (a synthetic ``el.click()`` grants no
user activation, and no browser then starts audio), and report the page's errors. Every
other question (a text, an attribute, whether something is visible, waiting for a state)
is a script run in the page, written once here.

Selectors are CSS. One that starts with a shadow host's selector and a space
(``"webcall-widget .launcher"``) looks inside that host's shadow root, as Playwright's
CSS engine does for an open one.
"""

from __future__ import annotations

import abc
import re
from typing import Any, Protocol

from tests.browser.engines.waiting import wait_until
from tests.browser.speech import Speech

TIMEOUT = 10.0

# find(selector) → the elements, looking through a leading shadow host (see above).
FIND = """(selector) => {
  const space = selector.indexOf(' ')
  const host = space > 0 ? document.querySelector(selector.slice(0, space)) : null
  const inside = Boolean(host && host.shadowRoot)
  return [...(inside ? host.shadowRoot : document).querySelectorAll(
    inside ? selector.slice(space + 1) : selector)]
}"""

# What Playwright calls visible: drawn with a size, and not visibility: hidden.
VISIBLE = """(el) => {
  const box = el.getBoundingClientRect()
  return box.width > 0 && box.height > 0 && getComputedStyle(el).visibility !== 'hidden'
}"""

RECORD_CSP_VIOLATIONS = (
    "document.addEventListener('securitypolicyviolation', (e) => {"
    " (window.__cspViolations = window.__cspViolations || [])"
    ".push(e.violatedDirective + ' ' + e.blockedURI); });"
)

# Keys by name, as WebDriver's actions (classic and BiDi) spell them.
KEYS = {
    "Enter": "\ue007",
    "Tab": "\ue004",
    "Escape": "\ue00c",
    "Shift": "\ue008",
    "Backspace": "\ue003",
    "Space": " ",
}


def key_actions(chord: str) -> list[dict[str, str]]:
    """WebDriver key actions for ``"Enter"``, ``"Shift+Enter"`` or a single character."""
    keys = [KEYS.get(name, name) for name in chord.split("+")] if len(chord) > 1 else [chord]
    down = [{"type": "keyDown", "value": key} for key in keys]
    up = [{"type": "keyUp", "value": key} for key in reversed(keys)]
    return down + up


def typing_actions(text: str) -> list[dict[str, str]]:
    return [action for char in text for action in key_actions(char)]


class PageFailed(AssertionError):
    """The page threw, or the engine could not do what the test asked."""


class EnginePage(abc.ABC):
    """One page (a tab of its own, with its own storage) in one engine."""

    engine: str
    allowed_errors: tuple[str, ...] = ()

    # What each engine does itself.

    @abc.abstractmethod
    def goto(self, url: str) -> None:
        """Load ``url`` and wait for its ``load`` event."""

    @abc.abstractmethod
    def reload(self) -> None: ...

    @abc.abstractmethod
    def call(self, function: str, *args: Any) -> Any:
        """Call the JavaScript ``function`` (its source) in the page with ``args`` (JSON),
        wait for the promise it may return, and answer its value as JSON (``undefined``
        as ``None``). It counts as no user gesture where the engine allows it."""

    @abc.abstractmethod
    def click(self, selector: str) -> None:
        """A real click (pointer events, user activation) in the middle of the element."""

    @abc.abstractmethod
    def type(self, selector: str, text: str) -> None:
        """Click into the element, then type ``text`` key by key."""

    @abc.abstractmethod
    def press(self, chord: str) -> None:
        """Press a key (``"Enter"``, ``"Shift+Enter"``) where the focus is."""

    @abc.abstractmethod
    def add_init_script(self, script: str) -> None:
        """Run ``script`` in every document this page loads from now on, before the
        document's own scripts."""

    @abc.abstractmethod
    def errors(self) -> list[str]:
        """What went wrong in the page so far: uncaught exceptions, unhandled rejections
        and ``console.error`` lines."""

    @abc.abstractmethod
    def close(self) -> None: ...

    # Written once, for every engine.

    def evaluate(self, function: str, *args: Any) -> Any:
        return self.call(function, *args)

    def find_script(self, body: str) -> str:
        """A function of ``(selector, ...args)`` whose ``els`` are the elements found."""
        return f"(selector, ...args) => {{ const els = ({FIND})(selector); {body} }}"

    def count(self, selector: str) -> int:
        return int(self.call(self.find_script("return els.length"), selector))

    def texts(self, selector: str) -> list[str]:
        return list(self.call(self.find_script("return els.map((e) => e.textContent)"), selector))

    def text(self, selector: str) -> str | None:
        found = self.texts(selector)
        return found[0] if found else None

    def attribute(self, selector: str, name: str) -> str | None:
        script = self.find_script("return els.length ? els[0].getAttribute(args[0]) : null")
        value = self.call(script, selector, name)
        return None if value is None else str(value)

    def value(self, selector: str) -> str | None:
        value = self.call(self.find_script("return els.length ? els[0].value : null"), selector)
        return None if value is None else str(value)

    def is_visible(self, selector: str) -> bool:
        script = self.find_script(f"return els.length > 0 && ({VISIBLE})(els[0])")
        return bool(self.call(script, selector))

    def is_focused(self, selector: str) -> bool:
        script = self.find_script(
            "const root = els.length && els[0].getRootNode();"
            " return Boolean(root) && root.activeElement === els[0]"
        )
        return bool(self.call(script, selector))

    def wait_for(
        self, function: str, *args: Any, timeout: float = TIMEOUT, message: str = ""
    ) -> Any:
        """The first truthy value of ``function(...args)`` in the page."""
        return wait_until(
            lambda: self.call(function, *args),
            timeout=timeout,
            message=message or f"{function} stayed false",
        )

    def wait_for_selector(self, selector: str, *, visible: bool = True) -> None:
        wait_until(
            lambda: self.is_visible(selector) == visible,
            timeout=TIMEOUT,
            message=f"{selector} never became {'visible' if visible else 'hidden'}",
        )

    def expect_text(self, selector: str, expected: str | list[str]) -> None:
        """The first element found has the text ``expected``, or (a list) the elements
        found have these texts, in this order."""

        def found() -> list[str]:
            texts = self.texts(selector)
            return texts if isinstance(expected, list) else texts[:1]

        want = expected if isinstance(expected, list) else [expected]
        wait_until(
            lambda: found() == want,
            timeout=TIMEOUT,
            message=f"{selector} never had the text {expected!r}: {found()!r}",
        )

    def expect_attribute(
        self, selector: str, name: str, expected: str, *, timeout: float = TIMEOUT
    ) -> None:
        wait_until(
            lambda: self.attribute(selector, name) == expected,
            timeout=timeout,
            message=f"{selector} never had {name}={expected!r}: "
            f"{self.attribute(selector, name)!r}",
        )

    def expect_count(self, selector: str, expected: int) -> None:
        wait_until(
            lambda: self.count(selector) == expected,
            timeout=TIMEOUT,
            message=f"never {expected} of {selector}: {self.count(selector)}",
        )

    def csp_violations(self) -> list[str]:
        return list(self.call("() => window.__cspViolations || []"))

    def sleep(self, seconds: float) -> None:
        """Let the page run for ``seconds`` (the page's clock, not the test's)."""
        self.call(f"() => new Promise((r) => setTimeout(r, {seconds * 1000:.0f}))")

    def allow_errors(self, pattern: str) -> None:
        """Errors that match ``pattern`` (a regular expression) are what the test
        expects, not failures."""
        self.allowed_errors = (*self.allowed_errors, pattern)

    def unexpected_errors(self) -> list[str]:
        return [
            error
            for error in self.errors()
            if not any(re.search(allowed, error) for allowed in self.allowed_errors)
        ]


class Site(Protocol):
    """The site a page is opened on: its URL, and scripts it can put at the top of every
    HTML page it serves (for an engine that cannot run a script before a page's own)."""

    url: str
    head_scripts: list[str]


class Engine(abc.ABC):
    """One browser engine, started once for the tests that use it."""

    name: str

    @abc.abstractmethod
    def version(self) -> str: ...

    @abc.abstractmethod
    def new_page(self, site: Site, *, microphone: Speech | None = None) -> EnginePage:
        """A new page with its own storage, allowed to use the microphone, which says
        ``microphone`` (or nothing: no microphone at all)."""

    @abc.abstractmethod
    def close(self) -> None: ...
