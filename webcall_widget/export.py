"""Calls as CSV, transcripts included: the admin's *Export selected calls as CSV* action.

One row per call; the transcript is one cell, a line per message (``Visitor: ...``,
``Agent: ...``). Text a visitor typed could start with ``=``, ``+``, ``-`` or ``@``, which
spreadsheets run as a formula: such cells are prefixed with ``'``. The file starts with a
byte-order mark so that spreadsheets read it as UTF-8.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from django.db.models import Prefetch, QuerySet

from webcall_widget.models import ROLE_CHOICES, AnalysisState, Call, CallAnalysis

HEADER = [
    "call",
    "agent",
    "mode",
    "status",
    "voicehub_call_id",
    "voicehub_status",
    "created_at",
    "live_at",
    "ended_at",
    "duration_seconds",
    "end_reason",
    "error_code",
    "origin",
    "messages_from_visitor",
    "messages_from_agent",
    "summary",
    "sentiment",
    "topics",
    "resolution",
    "recordings",
    "transcript",
]
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_ROLES = dict(ROLE_CHOICES)


def calls_csv(calls: QuerySet[Call]) -> str:
    """The CSV text of ``calls``, oldest first."""
    fetched = CallAnalysis.objects.filter(state=AnalysisState.FETCHED).order_by("-fetched_at")
    selected = (
        calls.select_related("agent")
        .prefetch_related("messages", Prefetch("analyses", queryset=fetched, to_attr="fetched"))
        .order_by("created_at")
    )
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for call in selected:
        writer.writerow([safe_cell(value) for value in _row(call)])
    return out.getvalue()


def _row(call: Call) -> Iterable[Any]:
    analysis = call.fetched[0] if getattr(call, "fetched", None) else None  # type: ignore[attr-defined]
    seconds = call.duration_seconds
    return [
        call.id,
        call.agent.slug,
        call.mode,
        call.status,
        call.voicehub_call_id,
        call.voicehub_status,
        _time(call.created_at),
        _time(call.live_at),
        _time(call.ended_at),
        "" if seconds is None else f"{seconds:.1f}",
        call.end_reason,
        call.error_code,
        call.origin,
        call.messages_from_visitor,
        call.messages_from_agent,
        analysis.summary if analysis else "",
        analysis.sentiment_label if analysis else "",
        "; ".join(analysis.main_topics) if analysis else "",
        analysis.resolution_status if analysis else "",
        "\n".join(str(r) for r in call.recordings) if isinstance(call.recordings, list) else "",
        "\n".join(
            f"{_ROLES.get(m.role, m.role)}: {m.text}" + ("" if m.final else " […]")
            for m in call.messages.all()
        ),
    ]


def _time(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def safe_cell(value: Any) -> str:
    """``value`` as text that no spreadsheet runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
