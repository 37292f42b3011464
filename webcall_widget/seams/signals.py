"""Run something before the handler a server installed for SIGTERM and SIGINT.

A relay process asked to stop must drain first (:mod:`webcall_widget.relay.stopping`), and
only then let the server stop. Servers install their handlers with ``signal.signal`` in
the main thread: Uvicorn since 0.29 (``Server.capture_signals``, around the whole of
``serve``), Twisted's reactor when Daphne runs it there. :func:`before` wraps the handler it
finds: the first signal starts the drain, which passes the signal on when done; a second
one is passed on at once (an operator who insists). What "passing on" means depends on the
handler found: the server's is called, Python's default is restored and the signal raised
again, so the process ends (SIGTERM) or gets its ``KeyboardInterrupt`` (SIGINT) as it would
have. Passing on always happens in the main thread: from another thread the signal is sent
to the process again, and the wrapper passes it on when it arrives.

What is not public is the order: the wrapper must be installed after the server's
handler, so the relay installs it when a socket first reaches a process, and again if the
server replaced it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from webcall_widget.seams.verified import Verified

VERIFIED = (
    Verified(
        "uvicorn",
        (0, 29),
        (0, 57),
        "webcall_widget/seams/signals.py",
        "tests/test_graceful_stop.py",
    ),
)

SIGNALS = (signal.SIGTERM, signal.SIGINT)
# A second signal this soon after the first is the same stop, sent twice (Ctrl+C reaches
# runserver's child from the terminal and from its parent); later, an operator insists.
SAME_SIGNAL_SECONDS = 1.0

Begin = Callable[[Callable[[], None]], None]


class _Drain:
    """The wrapper around one signal's previous handler."""

    def __init__(self, signum: int, previous: Any, begin: Begin) -> None:
        self.signum = signum
        self.previous = previous
        self.begin = begin
        self.started_at: float | None = None
        self.done = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self.started_at is not None and not self.done:
            if now - self.started_at < SAME_SIGNAL_SECONDS:
                return  # the same stop, twice (a process group's, and a parent's copy)
            self._pass_on(frame)
            return
        if self.done:
            self._pass_on(frame)
            return
        self.started_at = now
        self.begin(self._finished)

    def _finished(self) -> None:
        self.done = True
        if threading.current_thread() is threading.main_thread():
            self._pass_on(None)
        else:
            os.kill(os.getpid(), self.signum)  # comes back to __call__, in the main thread

    def _pass_on(self, frame: FrameType | None) -> None:
        previous = self.previous
        if previous is signal.SIG_IGN:
            return
        if callable(previous) and previous is not signal.default_int_handler:
            previous(self.signum, frame)
            return
        signal.signal(self.signum, previous if callable(previous) else signal.SIG_DFL)
        signal.raise_signal(self.signum)


def before(begin: Begin) -> bool:
    """Run ``begin(then)`` on the first SIGTERM or SIGINT, and pass the signal on when it
    calls ``then()``; False (and nothing done) outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return False
    for signum in SIGNALS:
        previous = signal.getsignal(signum)
        if isinstance(previous, _Drain):
            previous.begin = begin
            continue
        signal.signal(signum, _Drain(signum, previous, begin))
    return True


def installed() -> bool:
    return all(isinstance(signal.getsignal(signum), _Drain) for signum in SIGNALS)
