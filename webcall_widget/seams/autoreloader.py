"""``manage.py runserver``'s autoreloader: a stop signal to its parent reaches the server.

With the autoreloader (the default, and ``make run``), the process started is a parent
that only watches: it runs the same command again as a child (``RUN_MAIN`` set), which
serves, and restarts it when a file changes. A SIGTERM sent to the parent's PID (``kill``,
systemd with ``KillMode=process``, a container stop) ended the parent alone, and the child
was then killed without a word to its calls. :func:`forward_stops` makes the parent send
the signal on to its children and wait for them, so the child drains as any server does
(:mod:`webcall_widget.relay.stopping`), and the parent exits when the child has.

What is not public: how Django's autoreloader runs the child (``RUN_MAIN``, one child at a
time, ``subprocess.run`` in the parent); the children are found through ``/proc``
(Linux), and nothing is done where it is missing. In the child, the relay's drain is put
in front of Django's own handler once the autoreloader runs (``autoreload_started``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from django.utils import autoreload

from webcall_widget.seams.verified import Verified

VERIFIED = (
    Verified(
        "django",
        (5, 2),
        (6, 2),
        "webcall_widget/seams/autoreloader.py",
        "tests/test_graceful_stop.py",
    ),
)


def is_reloader_parent(argv: list[str] | None = None) -> bool:
    argv = sys.argv if argv is None else argv
    return (
        "runserver" in argv[1:3]
        and "--noreload" not in argv
        and os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) != "true"
    )


def is_reloader_child(argv: list[str] | None = None) -> bool:
    argv = sys.argv if argv is None else argv
    return "runserver" in argv[1:3] and os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) == "true"


def children(pid: int | None = None) -> list[int]:
    """The processes whose parent is ``pid`` (this one), read from ``/proc``."""
    pid = os.getpid() if pid is None else pid
    found = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = entry.read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry.parent.name))
    return found


def forward_stops() -> bool:
    """In the autoreloader's parent: pass SIGTERM and SIGINT on to the serving child, and
    stay until it exits (the parent's ``subprocess.run`` then returns its exit code).

    Django's ``run_with_reloader`` sets its own SIGTERM handler (``sys.exit(0)``, which
    made the parent kill its child) after the app is ready, so the handlers are set as the
    parent starts its child, in ``restart_with_reloader``."""
    if not Path("/proc").is_dir() or not is_reloader_parent():
        return False
    original = autoreload.restart_with_reloader
    if getattr(original, "forwards_stops", False):
        return True

    def restart_with_reloader() -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _forward)
        return original()

    restart_with_reloader.forwards_stops = True  # type: ignore[attr-defined]
    autoreload.restart_with_reloader = restart_with_reloader
    return True


def _forward(signum: int, frame: FrameType | None) -> None:
    for child in children():
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)


def when_watching(install: Callable[[], object]) -> None:
    """In the autoreloader's child: ``install()`` once its main thread watches the files,
    after Django set its own SIGTERM handler (``autoreload_started``)."""

    def started(sender: object, **kwargs: object) -> None:
        install()

    autoreload.autoreload_started.connect(started, weak=False, dispatch_uid=__name__)
