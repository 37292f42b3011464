"""An ASGI server (``uvicorn`` or ``daphne``, the first argument; the rest are its own) whose
Python allocations ``make bench-memory`` can see: the first SIGUSR1 starts tracemalloc
(after start-up, which it would slow several times over), each later one writes a snapshot
to ``$TRACE_DIR/<n>.snapshot``, then an empty ``<n>.done``."""

from __future__ import annotations

import gc
import itertools
import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

FRAMES = 30
_snapshots = itertools.count()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    directory = Path(os.environ["TRACE_DIR"])
    if not tracemalloc.is_tracing():
        tracemalloc.start(FRAMES)
        (directory / "tracing").touch()
        return
    gc.collect()
    n = next(_snapshots)
    tracemalloc.take_snapshot().dump(str(directory / f"{n}.snapshot"))
    (directory / f"{n}.done").touch()


def main() -> None:
    signal.signal(signal.SIGUSR1, _on_signal)
    server = sys.argv.pop(1)
    if server == "uvicorn":
        from uvicorn.main import main as uvicorn

        uvicorn()
    else:
        from daphne.cli import CommandLineInterface

        CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
