"""The sandbox's call webhooks, posted as VoiceHub documents them.

For each call: ``CallStatusChanged`` ``queued`` when it is created, ``in-progress`` when
its socket joins, and at the end ``completed`` (or ``cancelled`` if it never joined);
then, for a call that joined, ``RecordingsAvailable`` (a recording the sandbox serves)
and ``AnalysisResultReady``, whose result the sandbox serves too, to the call's API key
(:mod:`webcall_widget.sandbox.results`).

Posting never blocks the event loop: events wait in a queue, in order, and one task posts
them with ``requests`` in a worker thread. A delivery that gets no answer, or one that is
not 2xx, is posted again after each of ``SandboxConfig.webhook_retry_delays``, as the
same event (same ``eventId``), then given up; every attempt is recorded
(``SandboxState.deliveries``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import requests

from webcall_widget.sandbox.config import SandboxConfig
from webcall_widget.sandbox.state import Delivery, SandboxCall, SandboxState, WebhookTarget

logger = logging.getLogger(__name__)

HEADER_SECRET = "x-webhook-secret"
CALL_STATUS_CHANGED = "CallStatusChanged"
RECORDINGS_AVAILABLE = "RecordingsAvailable"
ANALYSIS_RESULT_READY = "AnalysisResultReady"

_WORD = re.compile(r"[^\W\d_]{4,}")
_POSITIVE = frozenset({"thanks", "thank", "great", "good", "love", "happy", "perfect", "nice"})
_NEGATIVE = frozenset({"angry", "broken", "terrible", "hate", "refund", "problem", "wrong"})
_GOODBYE = re.compile(r"^\s*(good\s*)?bye\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Pending:
    url: str
    secret: str
    body: dict[str, Any]
    generation: int


class WebhookSender:
    def __init__(self, config: SandboxConfig, state: SandboxState) -> None:
        self.config = config
        self.state = state
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def target(self) -> WebhookTarget | None:
        if self.state.webhook is not None:
            return self.state.webhook
        if self.config.webhook_url:
            return WebhookTarget(self.config.webhook_url, self.config.webhook_secret)
        return None

    # what happens to a call

    def created(self, call: SandboxCall) -> None:
        self._status(call, "queued")

    def joined(self, call: SandboxCall) -> None:
        if call.live_at is None:
            call.live_at = time.monotonic()
            self._status(call, "in-progress")

    def finished(self, call: SandboxCall) -> None:
        """The call is over: its last status, and for a call that went live its recording
        and analysis. Once per call."""
        if call.finished:
            return
        call.finished = True
        if call.live_at is None:
            self._status(call, "cancelled")
            return
        self._status(call, "completed")
        recording = recording_path(call.call_id)
        self.send(call, RECORDINGS_AVAILABLE, {"recordings": [recording]})
        analysis_id = uuid.uuid4().hex
        self.state.analyses[analysis_id] = analyse(call, recording, analysis_id)
        self.send(
            call,
            ANALYSIS_RESULT_READY,
            {
                "analysisId": analysis_id,
                "analysisResultUrl": f"{call.base_url}analysis/{analysis_id}",
            },
        )

    def _status(self, call: SandboxCall, status: str) -> None:
        self.send(call, CALL_STATUS_CHANGED, {"status": status})

    # posting

    def send(self, call: SandboxCall, event_type: str, fields: dict[str, Any]) -> None:
        """Queue one event for ``call``; returns at once. Nothing is sent without a target."""
        target = self.target()
        if target is None:
            return
        url = target.url
        if url.startswith("/"):
            if not call.site:
                return
            url = call.site + url
        body = {
            "eventType": event_type,
            "eventId": uuid.uuid4().hex,
            "timestamp": _now(),
            "callId": call.call_id,
            "agentId": call.agent_id,
            **fields,
        }
        self._queue_for_this_loop().put_nowait(
            _Pending(url, target.secret, body, self.state.generation)
        )

    def _queue_for_this_loop(self) -> asyncio.Queue[_Pending]:
        loop = asyncio.get_running_loop()
        if (
            self._queue is None
            or self._loop is not loop
            or self._task is None
            or self._task.done()
        ):
            self._loop = loop
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._post_all(self._queue), name="sandbox-webhooks")
        return self._queue

    async def _post_all(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            pending = await queue.get()
            try:
                await self._deliver(pending)
            except Exception:
                logger.exception("Sandbox: a webhook could not be posted.")

    async def _deliver(self, pending: _Pending) -> None:
        delays = self.config.webhook_retry_delays
        for attempt in range(1, len(delays) + 2):
            if pending.generation != self.state.generation:
                return  # queued before the state was reset
            status, error = await asyncio.to_thread(
                _post, pending.url, pending.secret, pending.body, self.config.webhook_timeout
            )
            lost = False
            faults = self.state.faults
            if status is not None and faults.webhook_lose_answers > 0:
                faults.webhook_lose_answers -= 1
                lost = True
            delivery = Delivery(
                event_id=pending.body["eventId"],
                event_type=pending.body["eventType"],
                call_id=pending.body["callId"],
                attempt=attempt,
                status=status,
                error=error,
                lost=lost,
            )
            if pending.generation != self.state.generation:
                return
            self.state.record_delivery(delivery)
            if delivery.delivered:
                return
            if attempt <= len(delays):
                await asyncio.sleep(delays[attempt - 1])
        logger.warning(
            "Sandbox: gave up posting %s of call %s to %s.",
            pending.body["eventType"],
            pending.body["callId"],
            pending.url,
        )


def _post(url: str, secret: str, body: dict[str, Any], timeout: float) -> tuple[int | None, str]:
    """POST one webhook (in a worker thread): the status, or no status and why."""
    headers = {"Content-Type": "application/json"}
    if secret:
        headers[HEADER_SECRET] = secret
    try:
        with requests.post(
            url,
            data=json.dumps(body),
            headers=headers,
            timeout=(timeout, timeout),
            allow_redirects=False,
        ) as response:
            return response.status_code, ""
    except requests.RequestException as exc:
        return None, type(exc).__name__


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def recording_path(call_id: str) -> str:
    return f"recordings/{call_id}.wav"


def analyse(call: SandboxCall, recording: str, analysis_id: str) -> dict[str, Any]:
    """The echo agent's analysis of a call, in the shape seen in a public integration."""
    words = [w.lower() for text in call.said for w in _WORD.findall(text)]
    positive = sorted({w for w in words if w in _POSITIVE})
    negative = sorted({w for w in words if w in _NEGATIVE})
    score = round(min(1.0, max(0.0, 0.5 + 0.1 * (len(positive) - len(negative)))), 2)
    label = "positive" if score > 0.55 else "negative" if score < 0.45 else "neutral"
    topics = [w for w, _ in Counter(w for w in words if w not in _POSITIVE).most_common(3)]
    said_goodbye = any(_GOODBYE.match(text) for text in call.said)
    return {
        "analysisId": analysis_id,
        "callId": call.call_id,
        "summary": (
            f"The visitor sent {len(call.said)} message(s) in a {call.mode.value} call; "
            "the echo agent repeated each one."
        ),
        "mainTopics": topics or ["echo"],
        "sentiment": {
            "score": score,
            "label": label,
            "positiveKeywords": positive,
            "negativeKeywords": negative,
        },
        "empathyScore": 0.5,
        "resolutionStatus": "resolved" if said_goodbye else "unresolved",
        "userInterruptionsCount": call.interruptions,
        "userSummary": "The visitor said: " + " / ".join(call.said) if call.said else "",
        "assistantSummary": "The agent said back what it heard.",
        "transcriptAnalysis": [{"role": "user", "text": text} for text in call.said],
        "recordingUrls": [recording],
        "duration": round(time.monotonic() - call.live_at, 1) if call.live_at else 0,
    }
