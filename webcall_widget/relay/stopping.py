"""How a relay process stops without losing a conversation.

On SIGTERM or SIGINT (a deploy, ``systemctl stop``, a container stop, Ctrl+C) the process
first **drains** (:func:`drain`): it takes no new call (its readiness answers no, its lease
says it drains, a socket that reaches it is told to go elsewhere), then:

* where VoiceHub lets a second socket join a call under way (``UPSTREAM.REJOIN`` "auto"),
  it hands every live call over: the browser is told to resume (close code 4013), lands on
  another process, which joins the call again and tells this one to let go; this process
  leaves the upstream only then. Calls whose visitor is away, and calls nobody took within
  a few seconds (a lone process: nobody else can), are left without a word to VoiceHub,
  for whichever process their visitor comes back to (or the sweepers, once this process's
  lease is gone; a restarted one sweeps too);
* where it does not ("never"), live calls run on, up to ``DRAIN_SECONDS``, and those still
  live then end as a server stop (1012).

Then the server's own handler runs, as if the signal had just come: Uvicorn and Daphne
close what is left and exit. :func:`install` puts the drain in front of whatever handler
the server installed (:mod:`webcall_widget.seams.signals`); under ``runserver``'s
autoreloader the parent process hands the signal to the serving child
(:mod:`webcall_widget.seams.autoreloader`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from webcall_widget import metrics
from webcall_widget.conf import get_settings
from webcall_widget.relay import tokens
from webcall_widget.relay.bridge import ANSWER_PATIENCE_SECONDS, Bridge
from webcall_widget.relay.process import RelayProcess
from webcall_widget.seams import signals
from webcall_widget.strings import visitor_message
from webcall_widget.voicehub.profile import Rejoin

logger = logging.getLogger("webcall_widget.relay")

POLL_SECONDS = 0.1
# A call handed over moves within a second or two; when none has moved for this long, no
# other process is taking them (a lone process restarting): they are left for the next.
HANDOVER_PATIENCE_SECONDS = 5.0
# A drain still under way this long after DRAIN_SECONDS and the wait for the agent's answer
# is given up, and the server stops anyway: a step that hangs (a cache or database that
# never answers) must not keep a process from stopping.
DRAIN_MARGIN_SECONDS = 10.0


async def drain(process: RelayProcess, *, seconds: float | None = None) -> None:
    """Stop taking calls, hand the live ones over (or let them run up to ``seconds``,
    ``DRAIN_SECONDS`` by default), then leave what is left."""
    settings = get_settings()
    seconds = settings.drain_seconds if seconds is None else seconds
    rejoin = settings.upstream.profile.rejoin is not Rejoin.NEVER
    process.draining = True
    try:
        await process.renew()
    except Exception:
        logger.exception("Relay process %s: could not say it drains.", process.id)
    calls = _bridges(process)
    logger.info(
        "Relay process %s stops: %d live call(s) %s.",
        process.id,
        len(calls),
        "to hand over" if rejoin else f"may run up to {seconds:g} s",
    )
    if rejoin:
        await asyncio.gather(*(bridge.hand_over() for bridge in calls), return_exceptions=True)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    waiting = _bridges(process, holding=rejoin)
    patience = loop.time() + HANDOVER_PATIENCE_SECONDS
    # Calls end on tasks of their own, on a registry shared with other threads: looked at.
    while waiting and loop.time() < deadline:
        if rejoin and loop.time() > patience:
            break  # no other process takes them (a lone process): they wait for the next
        await asyncio.sleep(POLL_SECONDS)
        still = _bridges(process, holding=rejoin)
        if len(still) < len(waiting):
            patience = loop.time() + HANDOVER_PATIENCE_SECONDS
        waiting = still
    left = _bridges(process)
    if rejoin:
        await asyncio.gather(*(bridge.let_go() for bridge in left), return_exceptions=True)
    else:
        await asyncio.gather(*(b.server_stopping() for b in left), return_exceptions=True)
    for _ in left:
        metrics.moved("left" if rejoin else "stopped")
    await process.stop_housekeeping()
    await process.release()
    logger.info("Relay process %s has drained.", process.id)


async def drain_within_bounds(process: RelayProcess) -> None:
    """:func:`drain`, given up (and logged) if it takes longer than it ever should."""
    limit = get_settings().drain_seconds + ANSWER_PATIENCE_SECONDS + DRAIN_MARGIN_SECONDS
    try:
        async with asyncio.timeout(limit):
            await drain(process)
    except TimeoutError:
        logger.error(
            "Relay process %s: its drain did not finish within %g s; the server stops anyway.",
            process.id,
            limit,
        )


def _bridges(process: RelayProcess, *, holding: bool = False) -> list[Bridge]:
    """The calls this process holds on this event loop; ``holding``: only those a browser
    holds or that are being handed over (a call whose visitor is away waits for no one
    here)."""
    loop = asyncio.get_running_loop()
    found = [c for c in process.calls.live_calls() if isinstance(c, Bridge) and c.loop is loop]
    return [b for b in found if b.handing_over or b.browser is not None] if holding else found


def install(process: RelayProcess) -> bool:
    """Drain ``process`` when SIGTERM or SIGINT comes, before the handler the server
    installed, on the event loop that serves it (a process that never served passes the
    signal on at once); False where signals cannot be handled (not the main thread)."""

    def begin(then: Callable[[], None]) -> None:
        loop = process.loop
        if loop is None or loop.is_closed():
            then()
            return

        def run() -> None:
            task = loop.create_task(drain_within_bounds(process), name="webcall-drain")
            task.add_done_callback(lambda _: then())

        loop.call_soon_threadsafe(run)

    return signals.before(begin)


def can_install() -> bool:
    return threading.current_thread() is threading.main_thread()


async def deny_resume(
    scope: dict[str, Any], send: Callable[[dict[str, Any]], Awaitable[None]]
) -> bool:
    """A stopping process refuses a resume's handshake with 503 where the ASGI server can
    answer a socket with HTTP (Uvicorn): a proxy then tries the next process at once
    (nginx: ``proxy_next_upstream http_503``), where a 4013 after the handshake would send
    the widget back through the load balancer, which may choose this process again. False
    (accept, then 4013) for other sockets and servers: the widget tries those again itself."""
    token = scope["url_route"]["kwargs"].get("token", "")
    extensions = scope.get("extensions") or {}
    if not tokens.is_resume_token(token) or "websocket.http.response" not in extensions:
        return False
    body = json.dumps(
        {"error": {"code": "restarting", "message": str(visitor_message("restarting"))}}
    ).encode()
    await send(
        {
            "type": "websocket.http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
            ],
        }
    )
    await send({"type": "websocket.http.response.body", "body": body})
    return True
