"""WebKit (Safari's engine): Debian's WebKitGTK MiniBrowser through ``WebKitWebDriver``
(classic WebDriver: HTTP and JSON), on an Xvfb display.

WebKitGTK 2.50's driver speaks no BiDi, and classic WebDriver has neither a console log
nor a script run before the page's own. So the site itself puts the page's instrumentation
(``INSTRUMENT``: errors, and the test's init scripts) at the top of every HTML page it
serves (``Site.head_scripts``), and the page reads what it recorded.

Its microphone is the sound server's (services.py): real capture through GStreamer's
PulseAudio source, with the same speech Chromium's fake device plays.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from typing import Any

import requests

from tests.browser.engines.page import (
    FIND,
    RECORD_CSP_VIOLATIONS,
    Engine,
    EnginePage,
    PageFailed,
    Site,
    key_actions,
    typing_actions,
)
from tests.browser.engines.services import (
    Display,
    Microphone,
    SoundServer,
    require,
    stop,
)
from tests.browser.speech import Speech
from tests.servers import free_port, wait_for_port

MINIBROWSER = os.environ.get(
    "WEBKIT_MINIBROWSER", "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"
)
# Each setting alone: a name MiniBrowser does not know hangs the session's start silently.
MINIBROWSER_ARGS = [
    "--automation",
    "--enable-media-stream=true",
    "--enable-webaudio=true",
    "--media-playback-requires-user-gesture=true",
]
# A WebDriver element reference's key (the spec's constant).
ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"
HTTP_SECONDS = 60

INSTRUMENT = """(() => {
  const errors = (window.__pageErrors = [])
  addEventListener('error', (e) => errors.push(String(e.message || e)))
  addEventListener('unhandledrejection', (e) => errors.push('rejected: ' + String(e.reason)))
  const error = console.error
  console.error = (...args) => {
    errors.push(args.map(String).join(' '))
    error.apply(console, args)
  }
})()"""
CALL = """const done = arguments[arguments.length - 1]
Promise.resolve().then(() => (%s)(...JSON.parse(arguments[0]))).then(
  (value) => done([true, JSON.stringify(value === undefined ? null : value)]),
  (error) => done([false, String(error) + ' ' + ((error && error.stack) || '')]))"""
ELEMENT = """const el = (%s)(arguments[0])[0]
if (el) el.scrollIntoView({ block: 'center', inline: 'center' })
return el || null"""


class WebKitPage(EnginePage):
    engine = "webkit"

    def __init__(self, webkit: WebKit, site: Site, microphone: Speech | None) -> None:
        self.webkit = webkit
        self.site = site
        self.earlier_errors: list[str] = []
        if not site.head_scripts:
            site.head_scripts.extend([INSTRUMENT, RECORD_CSP_VIOLATIONS])
        self.window = webkit.session_command("POST", "/window/new", type="window")["handle"]
        self.microphone = Microphone.saying(microphone, webkit.sound)

    def command(self, method: str, path: str, **body: Any) -> Any:
        """A command to this page's window (the session's current one from then on)."""
        if self.webkit.window != self.window:
            self.webkit.session_command("POST", "/window", handle=self.window)
            self.webkit.window = self.window
        return self.webkit.session_command(method, path, **body)

    def _keep_errors(self) -> None:
        """The errors of the document about to be left (the next one starts afresh)."""
        with contextlib.suppress(PageFailed):
            self.earlier_errors += self.call("() => window.__pageErrors || []")

    def goto(self, url: str) -> None:
        self._keep_errors()
        self.command("POST", "/url", url=url)

    def reload(self) -> None:
        self._keep_errors()
        self.command("POST", "/refresh")

    def call(self, function: str, *args: Any) -> Any:
        ok, value = self.command(
            "POST", "/execute/async", script=CALL % function, args=[json.dumps(args)]
        )
        if not ok:
            raise PageFailed(f"the script threw: {value}")
        return json.loads(value)

    def _element(self, selector: str) -> str:
        self.wait_for_selector(selector)
        found = self.command("POST", "/execute/sync", script=ELEMENT % FIND, args=[selector])
        if not found:
            raise PageFailed(f"no element {selector}")
        return str(found[ELEMENT_KEY])

    def click(self, selector: str) -> None:
        # Pointer actions, not "Element Click": WebKit takes the shadow host, hit at the
        # element's middle, for another element in the way.
        element = {ELEMENT_KEY: self._element(selector)}
        self._perform(
            {
                "type": "pointer",
                "id": "mouse",
                "actions": [
                    {"type": "pointerMove", "x": 0, "y": 0, "origin": element},
                    {"type": "pointerDown", "button": 0},
                    {"type": "pointerUp", "button": 0},
                ],
            }
        )

    def _perform(self, source: dict[str, Any]) -> None:
        self.command("POST", "/actions", actions=[source])
        self.command("DELETE", "/actions")

    def type(self, selector: str, text: str) -> None:
        self.click(selector)
        self._perform({"type": "key", "id": "keyboard", "actions": typing_actions(text)})

    def press(self, chord: str) -> None:
        self._perform({"type": "key", "id": "keyboard", "actions": key_actions(chord)})

    def add_init_script(self, script: str) -> None:
        self.site.head_scripts.append(script)

    def errors(self) -> list[str]:
        try:
            now = self.call("() => window.__pageErrors || []")
        except PageFailed as failed:
            now = [str(failed)]
        return [*self.earlier_errors, *now]

    def close(self) -> None:
        if self.microphone:
            self.microphone.stop()
        self.command("DELETE", "/window")
        self.webkit.session_command("POST", "/window", handle=self.webkit.home)
        self.webkit.window = self.webkit.home


class WebKit(Engine):
    name = "webkit"

    def __init__(self, display: Display, sound: SoundServer) -> None:
        self.sound = sound
        self.port = free_port()
        self.driver = subprocess.Popen(
            [require("WebKitWebDriver"), f"--port={self.port}"],
            env={**os.environ, **sound.env, "DISPLAY": display.name},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.http = requests.Session()
        self.session = ""
        try:
            wait_for_port(self.port, self.driver, "WebKitWebDriver")
            started = self.command(
                "POST",
                "/session",
                capabilities={
                    "alwaysMatch": {
                        "webkitgtk:browserOptions": {
                            "binary": MINIBROWSER,
                            "args": MINIBROWSER_ARGS,
                        }
                    }
                },
            )
        except BaseException:
            self.close()
            raise
        # One session (the driver allows one); each page is a tab of its own, and the
        # first, blank, tab stays open so that the session does.
        self.session = started["sessionId"]
        self.browser_version = started["capabilities"].get("browserVersion", "")
        self.home = self.window = self.session_command("GET", "/window")
        self.session_command("POST", "/window/rect", width=1280, height=800)

    def session_command(self, method: str, path: str, **body: Any) -> Any:
        return self.command(method, f"/session/{self.session}{path}", **body)

    def command(self, method: str, path: str, **body: Any) -> Any:
        response = self.http.request(
            method,
            f"http://127.0.0.1:{self.port}{path}",
            json=body if method == "POST" else None,
            timeout=HTTP_SECONDS,
        )
        answer = response.json()["value"]
        if response.status_code >= 400:
            raise PageFailed(
                f"WebKitWebDriver {method} {path}: {answer.get('error')}: {answer.get('message')}"
            )
        return answer

    def version(self) -> str:
        return f"WebKitGTK {self.browser_version}".strip()

    def new_page(self, site: Site, *, microphone: Speech | None = None) -> EnginePage:
        return WebKitPage(self, site, microphone)

    def close(self) -> None:
        if self.session:
            self.command("DELETE", f"/session/{self.session}")
        self.http.close()
        stop(self.driver)
