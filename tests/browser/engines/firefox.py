"""Firefox: Debian's ESR, driven over WebDriver BiDi (see bidi.py), headless.

Its microphone is the sound server's (services.py): Firefox's own fake stream is a
steady tone, in which the sandbox agent hears one endless utterance. Its audio goes to the
sound server's speakers: without an output device an AudioContext never runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from tests.browser.engines.bidi import BidiError, BidiSession
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
from tests.browser.engines.services import Microphone, ServiceFailed, SoundServer, require, stop
from tests.browser.speech import Speech

FIREFOX = os.environ.get("FIREFOX", "firefox-esr")
PREFERENCES: dict[str, object] = {
    # the microphone: the real one (the sound server's), allowed without a prompt
    "media.navigator.streams.fake": False,
    "media.navigator.permission.disabled": True,
    # audio only after a click in the page, as for a visitor (BiDi clicks are real ones)
    "media.autoplay.default": 1,
    "media.autoplay.block-webaudio": True,
    # no first-run pages, updates or telemetry
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "remote.prefs.recommended": True,
}
NO_SOUND = {"PULSE_SERVER": "unix:/nonexistent/pulse"}
BIDI_URL = re.compile(r"WebDriver BiDi listening on (ws://\S+)")

# A function's JSON value or exception, whatever the page's scripts did to JSON.
CALL = """(args) => Promise.resolve().then(() => (%s)(...JSON.parse(args)))
  .then((value) => JSON.stringify(value === undefined ? null : value))"""
ELEMENT = """(selector) => {
  const el = (%s)(selector)[0]
  if (el) el.scrollIntoView({ block: 'center', inline: 'center' })
  return el || null
}"""


class FirefoxPage(EnginePage):
    engine = "firefox"

    def __init__(self, firefox: Firefox, microphone: Speech | None) -> None:
        self.firefox = firefox
        self.bidi = firefox.bidi
        self.user_context = self.bidi.send("browser.createUserContext")["userContext"]
        self.context = self.bidi.send(
            "browsingContext.create", type="tab", userContext=self.user_context
        )["context"]
        self.bidi.send(
            "browsingContext.setViewport",
            context=self.context,
            viewport={"width": 1280, "height": 800},
        )
        self.logged: list[dict[str, Any]] = []
        self.bidi.listeners.append(self._on_event)
        self.microphone = Microphone.saying(microphone, firefox.sound)
        self.add_init_script(RECORD_CSP_VIOLATIONS)

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "log.entryAdded" and params.get("source", {}).get("context") == self.context:
            self.logged.append(params)

    def goto(self, url: str) -> None:
        self.bidi.send("browsingContext.navigate", context=self.context, url=url, wait="complete")

    def reload(self) -> None:
        self.bidi.send("browsingContext.reload", context=self.context, wait="complete")

    def _call(self, function: str, args: list[Any], **options: Any) -> dict[str, Any]:
        answer = self.bidi.send(
            "script.callFunction",
            functionDeclaration=function,
            arguments=args,
            target={"context": self.context},
            awaitPromise=True,
            userActivation=False,
            **options,
        )
        if answer["type"] == "exception":
            raise PageFailed(f"the script threw: {answer['exceptionDetails']['text']}")
        return dict(answer["result"])

    def call(self, function: str, *args: Any) -> Any:
        result = self._call(CALL % function, [{"type": "string", "value": json.dumps(args)}])
        return json.loads(result["value"])

    def _element(self, selector: str) -> dict[str, str]:
        self.wait_for_selector(selector)
        found = self._call(ELEMENT % FIND, [{"type": "string", "value": selector}])
        if found.get("type") != "node":
            raise PageFailed(f"no element {selector}")
        return {"sharedId": found["sharedId"]}

    def _perform(self, *sources: dict[str, Any]) -> None:
        self.bidi.send("input.performActions", context=self.context, actions=list(sources))

    def click(self, selector: str) -> None:
        element = self._element(selector)
        self._perform(
            {
                "type": "pointer",
                "id": "mouse",
                "actions": [
                    {
                        "type": "pointerMove",
                        "x": 0,
                        "y": 0,
                        "origin": {"type": "element", "element": element},
                    },
                    {"type": "pointerDown", "button": 0},
                    {"type": "pointerUp", "button": 0},
                ],
            }
        )

    def type(self, selector: str, text: str) -> None:
        self.click(selector)
        self._perform({"type": "key", "id": "keyboard", "actions": typing_actions(text)})

    def press(self, chord: str) -> None:
        self._perform({"type": "key", "id": "keyboard", "actions": key_actions(chord)})

    def add_init_script(self, script: str) -> None:
        self.bidi.send(
            "script.addPreloadScript",
            functionDeclaration=f"() => {{ {script}\n}}",
            userContexts=[self.user_context],
        )

    def errors(self) -> list[str]:
        return [
            entry.get("text", "")
            for entry in self.logged
            if entry.get("type") == "javascript" or entry.get("level") == "error"
        ]

    def close(self) -> None:
        if self.microphone:
            self.microphone.stop()
        self.bidi.listeners.remove(self._on_event)
        self.bidi.send("browser.removeUserContext", userContext=self.user_context)


class Firefox(Engine):
    name = "firefox"

    def __init__(self, sound: SoundServer | None) -> None:
        """``sound``: the sound server for its speakers and microphone; None: a Firefox
        that finds no sound server, so neither (a visitor's computer without speakers)."""
        self.sound = sound
        self.profile = Path(tempfile.mkdtemp(prefix="webcall-firefox-"))
        (self.profile / "user.js").write_text(
            "".join(
                f"user_pref({json.dumps(name)}, {json.dumps(value)});\n"
                for name, value in PREFERENCES.items()
            )
        )
        self.process = subprocess.Popen(
            [
                require(FIREFOX),
                "--headless",
                "--no-remote",
                "--remote-debugging-port=0",
                "--profile",
                str(self.profile),
            ],
            env={
                **os.environ,
                **(sound.env if sound else NO_SOUND),
                "MOZ_CRASHREPORTER_DISABLE": "1",
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            self.bidi = BidiSession(self._listening() + "/session")
            self.capabilities = self.bidi.send("session.new", capabilities={})["capabilities"]
            self.bidi.send("session.subscribe", events=["log.entryAdded"])
        except BaseException:
            self.close()
            raise

    def _listening(self) -> str:
        """The BiDi URL Firefox prints once it listens; its further output is drained."""
        assert self.process.stderr is not None
        said = []
        for line in self.process.stderr:
            found = BIDI_URL.search(line)
            if found:
                threading.Thread(
                    target=self.process.stderr.read, name="firefox-stderr", daemon=True
                ).start()
                return found.group(1)
            said.append(line)
        raise ServiceFailed(f"Firefox exited before it listened: {''.join(said[-20:])}")

    def version(self) -> str:
        return f"Firefox {self.capabilities['browserVersion']}"

    def new_page(self, site: Site, *, microphone: Speech | None = None) -> EnginePage:
        return FirefoxPage(self, microphone)

    def close(self) -> None:
        if hasattr(self, "bidi"):
            # It may be gone already; the process is stopped below.
            with contextlib.suppress(BidiError):
                self.bidi.send("browser.close")
            self.bidi.close()
        stop(self.process)
        if self.process.stderr:
            self.process.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)
