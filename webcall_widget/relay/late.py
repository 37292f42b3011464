"""The end of a call, written once the database answers.

A call that ends while the database does not answer (restarting, failing over) could not
write the rest of its transcript nor record its end: both were lost, and its row stayed
open, holding one of its agent's lines for as long as its process lived. What the end could
not write is handed here (:func:`write_later`) and tried again in the background, in order,
after 0.5, 1 and 2 seconds and then every 5, for up to :data:`LATE_WRITE_SECONDS`. The
visitor is told the call ended at once, as always.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger("webcall_widget.relay")

RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)
LATE_WRITE_SECONDS = 300.0

Write = Callable[[], Awaitable[None]]

_pending: set[asyncio.Task[None]] = set()


def write_later(label: str, writes: list[Write]) -> None:
    """Try ``writes`` again, one after the other, until each is done."""
    task = asyncio.create_task(_until_written(label, writes), name=f"webcall-late-{label}")
    _pending.add(task)
    task.add_done_callback(_pending.discard)


def pending() -> int:
    """Calls whose end is still to be written."""
    return len(_pending)


async def _until_written(label: str, writes: list[Write]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LATE_WRITE_SECONDS
    pauses = itertools.chain(RETRY_SECONDS, itertools.repeat(RETRY_SECONDS[-1]))
    logger.warning(
        "Call %s: the database did not answer as it ended; its end is written once it does.",
        label,
    )
    await asyncio.sleep(next(pauses))
    while writes:
        try:
            await writes[0]()
        except Exception as exc:
            if loop.time() >= deadline:
                logger.error(
                    "Call %s: the database did not answer for %g s; the rest of its "
                    "transcript or its end is lost (%s).",
                    label,
                    LATE_WRITE_SECONDS,
                    type(exc).__name__,
                )
                return
            await asyncio.sleep(next(pauses))
            continue
        writes.pop(0)
    logger.info("Call %s: its end is written; the database answers again.", label)
