"""What Firefox and WebKitGTK need around them here: a display and a sound server.

Both are started by the browser suite's fixtures, each in a folder of its own, and stopped
by them (never a system-wide server: other runs on the machine may have their own).

- ``Display``: Xvfb, for WebKitGTK, which has no headless mode.
- ``SoundServer``: PulseAudio with two null sinks. ``speakers`` is the default output:
  Firefox's AudioContext never runs without an output device. Whatever plays into
  ``voice`` is the default input, ``microphone`` (a plain source remapped from the sink's
  monitor: WebKitGTK lists no monitor as a microphone). Firefox and WebKitGTK hear from it
  what Chromium's ``--use-file-for-fake-audio-capture`` plays.
- ``Microphone``: plays a WAV file into ``voice`` each time a page opens the microphone,
  once or over and over, as Chromium's fake capture does with its file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.browser.engines.waiting import wait_until
from tests.browser.speech import Speech


class ServiceFailed(RuntimeError):
    """A service the browser suite starts did not start."""


def require(program: str) -> str:
    found = shutil.which(program)
    if not found:
        raise ServiceFailed(
            f"{program} is missing: run scripts/install-system-deps (make test does)"
        )
    return found


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class Display:
    """An X server in memory (Xvfb), on the first free display number it finds."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.name = ""

    def start(self) -> Display:
        read, write = os.pipe()
        try:
            self.process = subprocess.Popen(
                [
                    require("Xvfb"),
                    "-displayfd",
                    str(write),
                    "-screen",
                    "0",
                    "1280x800x24",
                    "-nolisten",
                    "tcp",
                ],
                pass_fds=(write,),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            os.close(write)
            with os.fdopen(read) as announced:
                number = announced.readline().strip()
        except BaseException:
            if self.process:
                stop(self.process)
            raise
        if not number:
            stop(self.process)
            raise ServiceFailed("Xvfb did not start (it announced no display)")
        self.name = f":{number}"
        return self

    def stop(self) -> None:
        if self.process:
            stop(self.process)


SOUND_SETUP = """\
load-module module-native-protocol-unix auth-anonymous=1
load-module module-null-sink sink_name=speakers sink_properties=device.description=Speakers
load-module module-null-sink sink_name=voice rate=48000 channels=1
load-module module-remap-source master=voice.monitor source_name=microphone \
source_properties=device.description=Microphone
set-default-sink speakers
set-default-source microphone
"""


class SoundServer:
    """PulseAudio of the tests' own: speakers that play to nothing, a microphone the
    tests speak into (see the module's docstring)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="webcall-pulse-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.microphone_index = ""

    @property
    def env(self) -> dict[str, str]:
        """What a client of this server (a browser, paplay) needs in its environment."""
        return {
            "PULSE_SERVER": f"unix:{self.folder / 'native'}",
            "PULSE_RUNTIME_PATH": str(self.folder),
            "PULSE_STATE_PATH": str(self.folder),
        }

    def start(self) -> SoundServer:
        setup = self.folder / "setup.pa"
        setup.write_text(SOUND_SETUP)
        self.process = subprocess.Popen(
            [
                require("pulseaudio"),
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                "--disable-shm",
                "--log-level=error",
                "-n",
                "-F",
                str(setup),
            ],
            env={**os.environ, **self.env, "HOME": str(self.folder)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_until(self._answers, timeout=10, message="PulseAudio did not answer")
        except BaseException as error:
            stop(self.process)
            errors = self.process.stderr.read().decode() if self.process.stderr else ""
            raise ServiceFailed(f"PulseAudio did not start: {errors.strip()}") from error
        return self

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise ServiceFailed("PulseAudio exited")
        return self.pactl("info").returncode == 0

    def pactl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [require("pactl"), *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )

    def recordings(self) -> set[str]:
        """The ids of the streams recording from the microphone now (a page's capture;
        not the remapping's own, which records from the monitor)."""
        if not self.microphone_index:
            sources = self.pactl("list", "short", "sources").stdout.splitlines()
            named = [line.split()[0] for line in sources if line.split()[1:2] == ["microphone"]]
            self.microphone_index = named[0] if named else ""
        listed = self.pactl("list", "short", "source-outputs").stdout.splitlines()
        return {line.split()[0] for line in listed if line.split()[1:2] == [self.microphone_index]}

    def stop(self) -> None:
        if self.process:
            stop(self.process)
            if self.process.stderr:
                self.process.stderr.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class Microphone:
    """Speaks ``wav`` into the sound server's microphone whenever a page starts recording
    from it: once per recording, or (``loop``) for as long as it records."""

    POLL_SECONDS = 0.05

    def __init__(self, sound: SoundServer, wav: Path, *, loop: bool) -> None:
        self.sound = sound
        self.wav = wav
        self.loop = loop
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="microphone", daemon=True)
        self._playing: subprocess.Popen[bytes] | None = None

    @classmethod
    def saying(cls, speech: Speech | None, sound: SoundServer | None) -> Microphone | None:
        """A microphone saying ``speech``, started; None when there is nothing to say or
        no sound server to say it in."""
        return cls(sound, speech.wav, loop=speech.loop).start() if speech and sound else None

    def start(self) -> Microphone:
        self._thread.start()
        return self

    def _run(self) -> None:
        heard: set[str] = set()
        while not self._stopping.is_set():
            recording = self.sound.recordings()
            new = recording - heard
            heard |= recording
            if new or (self.loop and recording):
                self._say()
            else:
                time.sleep(self.POLL_SECONDS)

    def _say(self) -> None:
        self._playing = subprocess.Popen(
            [require("paplay"), "--device=voice", "--latency-msec=20", str(self.wav)],
            env={**os.environ, **self.sound.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while self._playing.poll() is None and not self._stopping.is_set():
            time.sleep(self.POLL_SECONDS)
        stop(self._playing)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10)
        if self._playing:
            stop(self._playing)
