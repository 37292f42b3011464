"""Fetching analyses in the background, in threads of this process.

The webhook request that names an analysis only stores it as pending and hands its id to
:data:`fetcher` once the transaction commits; VoiceHub gets its answer at once. Up to
``MAX_THREADS`` threads fetch, one analysis at a time each, trying again with a doubling
wait (``WEBHOOKS.ANALYSIS_ATTEMPTS``, ``WEBHOOKS.ANALYSIS_RETRY_DELAY``) while VoiceHub is
unreachable or answers 404, 429 or 5xx. A thread ends when nothing is left to fetch.

Nothing is lost when the process stops mid-fetch (the threads are daemons): the analysis
stays "being fetched", and ``manage.py expire_webcalls`` fetches it once it has been
pending longer than any fetch can take (:func:`fetch_abandoned`); the admin's *Fetch
again* action queues it at once. Each process fetches the analyses its own webhook
requests stored; nothing is shared.

Tests wait for the queue with :meth:`AnalysisFetcher.wait_idle`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import deque

from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone

from webcall_widget.conf import get_settings
from webcall_widget.models import AnalysisState, Call, CallAnalysis
from webcall_widget.signals import analysis_ready, send_robustly
from webcall_widget.webhooks.analysis import extract, fetch_analysis
from webcall_widget.webhooks.errors import AnalysisFetchError
from webcall_widget.webhooks.events import identifier

logger = logging.getLogger("webcall_widget.webhooks")

MAX_THREADS = 2
ERROR_LENGTH = 2000


class AnalysisFetcher:
    """A queue of analyses to fetch, and the threads that fetch them."""

    def __init__(self, max_threads: int = MAX_THREADS) -> None:
        self.max_threads = max_threads
        self._queue: deque[int] = deque()
        self._threads: set[threading.Thread] = set()
        self._leaving = 0  # threads done with the queue, closing their connections
        self._changed = threading.Condition()

    def submit(self, analysis_id: int) -> None:
        """Fetch this analysis soon, in a background thread; returns at once."""
        with self._changed:
            self._queue.append(analysis_id)
            if len(self._threads) < self.max_threads:
                thread = threading.Thread(
                    target=self._work, name="webcall-analysis-fetch", daemon=True
                )
                self._threads.add(thread)
                thread.start()

    def submit_on_commit(self, analysis_id: int) -> None:
        """:meth:`submit` once the current transaction commits (at once outside one), so
        that the thread finds the row."""
        transaction.on_commit(lambda: self.submit(analysis_id))

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued analysis is fetched (or has failed for good) and every
        thread has ended; False if ``timeout`` seconds passed first."""
        with self._changed:
            return self._changed.wait_for(
                lambda: not self._queue and not self._threads and not self._leaving, timeout
            )

    def _work(self) -> None:
        me = threading.current_thread()
        try:
            while True:
                with self._changed:
                    if not self._queue:
                        self._threads.discard(me)
                        self._leaving += 1
                        break
                    analysis_id = self._queue.popleft()
                try:
                    fetch_and_store(analysis_id)
                except Exception:
                    logger.exception("Analysis %s: fetching it failed unexpectedly.", analysis_id)
        finally:
            connections.close_all()  # this thread's own connections
            with self._changed:
                if me in self._threads:  # left by an exception above
                    self._threads.discard(me)
                else:
                    self._leaving -= 1
                self._changed.notify_all()


fetcher = AnalysisFetcher()


def abandoned_after() -> float:
    """Seconds after which a pending analysis cannot still be in a fetch: every attempt
    timing out, with every wait between attempts, and a minute to spare."""
    settings = get_settings().webhooks
    attempts = settings.analysis_attempts
    waits = settings.analysis_retry_delay * (2 ** (attempts - 1) - 1)
    return attempts * settings.analysis_timeout + waits + 60


def fetch_abandoned() -> int:
    """Fetch, here and now, the analyses left pending by a process that stopped before
    its fetch ended; how many were tried. One attempt each, without waiting: what fails
    is marked failed with its reason (the admin's *Fetch again* queues it again).

    The clock is ``queued_at``, not ``requested_at``: an analysis fetched again long after
    it arrived is in a fetch of its own for :func:`abandoned_after` seconds too."""
    cutoff = timezone.now() - dt.timedelta(seconds=abandoned_after())
    ids = list(
        CallAnalysis.objects.filter(state=AnalysisState.PENDING, queued_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    for analysis_id in ids:
        logger.info("Analysis %s: left pending by a stopped process; fetching it.", analysis_id)
        try:
            fetch_and_store(analysis_id, attempts=1)
        except Exception:
            logger.exception("Analysis %s: fetching it failed unexpectedly.", analysis_id)
    return len(ids)


def fetch_and_store(analysis_id: int, *, attempts: int | None = None) -> None:
    """Fetch one pending analysis, trying again while that may help (up to ``attempts``,
    by default ``WEBHOOKS.ANALYSIS_ATTEMPTS``); store what came, or the last error.
    Synchronous: runs in a fetch thread (or a management command)."""
    settings = get_settings().webhooks
    attempts = attempts or settings.analysis_attempts
    analysis = CallAnalysis.objects.select_related("agent").filter(pk=analysis_id).first()
    if analysis is None or analysis.state == AnalysisState.FETCHED:
        return
    # A failure never overwrites a result another fetch of it stored meanwhile.
    rows = CallAnalysis.objects.filter(pk=analysis_id).exclude(state=AnalysisState.FETCHED)
    for attempt in range(1, attempts + 1):
        try:
            raw = fetch_analysis(
                analysis.source_url,
                api_key=analysis.agent.api_key,
                timeout=settings.analysis_timeout,
                max_bytes=settings.analysis_max_bytes,
            )
        except AnalysisFetchError as exc:
            last = not exc.retryable or attempt == attempts
            rows.update(
                attempts=F("attempts") + 1,
                error=str(exc)[:ERROR_LENGTH],
                state=AnalysisState.FAILED if last else AnalysisState.PENDING,
            )
            if last:
                logger.warning(
                    "Analysis %s of agent %s: not fetched after %d attempt(s): %s",
                    analysis.analysis_id,
                    analysis.agent.slug,
                    attempt,
                    exc,
                )
                return
            delay = settings.analysis_retry_delay * 2 ** (attempt - 1)
            logger.info(
                "Analysis %s of agent %s: %s; trying again in %gs.",
                analysis.analysis_id,
                analysis.agent.slug,
                exc,
                delay,
            )
            connections.close_all()  # not held while waiting
            time.sleep(delay)
            continue
        store(analysis_id, raw)
        return


def store(analysis_id: int, raw: dict[str, object]) -> None:
    """Store a fetched result and its fields, add its recordings to the call, and send
    ``analysis_ready``."""
    fields = extract(raw)
    with transaction.atomic():
        analysis = (
            CallAnalysis.objects.select_for_update(of=("self",))
            .select_related("agent")
            .get(pk=analysis_id)
        )
        if analysis.state == AnalysisState.FETCHED:  # another fetch of it landed first
            return
        analysis.raw = raw
        analysis.state = AnalysisState.FETCHED
        analysis.fetched_at = timezone.now()
        analysis.attempts += 1
        analysis.error = ""
        analysis.summary = fields.summary
        analysis.main_topics = fields.main_topics
        analysis.sentiment_label = fields.sentiment_label
        analysis.sentiment_score = fields.sentiment_score
        analysis.positive_keywords = fields.positive_keywords
        analysis.negative_keywords = fields.negative_keywords
        analysis.empathy_score = fields.empathy_score
        analysis.resolution_status = fields.resolution_status
        analysis.user_interruptions = fields.user_interruptions
        analysis.user_summary = fields.user_summary
        analysis.assistant_summary = fields.assistant_summary
        analysis.duration_seconds = fields.duration_seconds
        if analysis.call_id is None:  # the event named no call we know: does the result?
            _link_call(analysis, raw)
        analysis.save()
        call = None
        if analysis.call_id is not None:
            call = Call.objects.select_for_update().get(pk=analysis.call_id)
            add_recordings(call, fields.recording_urls)
    logger.info("Analysis %s of agent %s fetched.", analysis.analysis_id, analysis.agent.slug)
    send_robustly(
        analysis_ready,
        CallAnalysis,
        about=f"Analysis {analysis.analysis_id}",
        analysis=analysis,
        agent=analysis.agent,
        call=call,
    )


def _link_call(analysis: CallAnalysis, raw: dict[str, object]) -> None:
    voicehub_call_id = identifier(raw.get("callId")) or analysis.voicehub_call_id
    if not voicehub_call_id:
        return
    analysis.voicehub_call_id = voicehub_call_id
    analysis.call = Call.objects.filter(
        agent_id=analysis.agent_id, voicehub_call_id=voicehub_call_id
    ).first()


def add_recordings(call: Call, paths: list[str]) -> None:
    """Add recording paths the call does not list yet (``call`` locked by the caller)."""
    known = list(call.recordings) if isinstance(call.recordings, list) else []
    new = [p for p in dict.fromkeys(paths) if p not in known]
    if new:
        call.recordings = known + new
        call.save(update_fields=["recordings"])
