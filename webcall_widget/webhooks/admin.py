"""The admin of what comes after a call: webhook events, analyses, and what the call page
and list show of them (VoiceHub's status, recordings, the analysis, filters by it).

Registered from :mod:`webcall_widget.admin`, which imports this module.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from webcall_widget.conf import get_settings
from webcall_widget.models import (
    AnalysisState,
    Call,
    CallAnalysis,
    WebhookEvent,
)
from webcall_widget.webhooks.analysis import configured_upstream
from webcall_widget.webhooks.processing import process_again
from webcall_widget.webhooks.worker import fetcher

RECENT_ANALYSES = 500  # the topic filter offers the topics of these
FILTER_CHOICES = 20


def recording_href(path: str, upstream: str) -> str | None:
    """Where a recording VoiceHub listed can be opened: an http(s) URL as it is, a path
    on the VoiceHub the call was created on; None for anything else."""
    parts = urlsplit(path)
    if parts.scheme in ("http", "https") and parts.netloc:
        return path
    if parts.scheme or path.startswith("//") or not upstream:
        return None
    return upstream.rstrip("/") + "/" + path.lstrip("/")


def recording_links(call: Call) -> SafeString | str:
    recordings = call.recordings if isinstance(call.recordings, list) else []
    if not recordings:
        return str(_("None reported yet."))
    items = []
    for path in recordings:
        href = recording_href(str(path), call.upstream_url)
        if href is None:
            items.append(format_html("<li>{}</li>", path))
        else:
            items.append(
                format_html(
                    '<li><a href="{}" rel="noreferrer" target="_blank">{}</a></li>', href, path
                )
            )
    return format_html("<ul>{}</ul>", format_html_join("", "{}", ((i,) for i in items)))


def latest_analysis(call: Call) -> CallAnalysis | None:
    analyses: list[CallAnalysis] | None = getattr(call, "analysis_list", None)
    if analyses is None:
        analyses = list(call.analyses.order_by("-requested_at"))
    fetched = [a for a in analyses if a.state == AnalysisState.FETCHED]
    return next(iter(fetched or analyses), None)


def analysis_overview(call: Call) -> SafeString | str:
    analysis = latest_analysis(call)
    if analysis is None:
        return str(
            _(
                "None yet: VoiceHub sends it after the call, to the agent's webhook "
                "(see the agent's page)."
            )
        )
    link = reverse("admin:webcall_widget_callanalysis_change", args=[analysis.pk])
    if analysis.state == AnalysisState.PENDING:
        return format_html('<a href="{}">{}</a>', link, _("Being fetched from VoiceHub."))
    if analysis.state == AnalysisState.FAILED:
        return format_html(
            '<a href="{}">{}</a> {}', link, _("Could not be fetched:"), analysis.error
        )
    sentiment = analysis.sentiment_label or ""
    if analysis.sentiment_score is not None:
        sentiment = f"{sentiment} ({analysis.sentiment_score:g})".strip()
    rows = [
        (_("Summary"), analysis.summary),
        (_("Sentiment"), sentiment),
        (_("Positive words"), ", ".join(analysis.positive_keywords)),
        (_("Negative words"), ", ".join(analysis.negative_keywords)),
        (_("Topics"), ", ".join(analysis.main_topics)),
        (_("Resolution"), analysis.resolution_status),
        (_("Empathy"), "" if analysis.empathy_score is None else f"{analysis.empathy_score:g}"),
        (
            _("Visitor interruptions"),
            "" if analysis.user_interruptions is None else str(analysis.user_interruptions),
        ),
        (_("Visitor summary"), analysis.user_summary),
        (_("Agent summary"), analysis.assistant_summary),
    ]
    return format_html(
        '<dl class="webcall-analysis">{}</dl><a href="{}">{}</a>',
        format_html_join("", "<dt>{}</dt><dd>{}</dd>", ((k, v) for k, v in rows if v)),
        link,
        _("The whole result as VoiceHub sent it"),
    )


def sentiment_of(call: Call) -> str:
    analysis = latest_analysis(call)
    return analysis.sentiment_label if analysis is not None else ""


class _AnalysisValueFilter(admin.SimpleListFilter):
    field = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        values = (
            CallAnalysis.objects.exclude(**{self.field: ""})
            .values_list(self.field, flat=True)
            .distinct()
            .order_by(self.field)[:FILTER_CHOICES]
        )
        return [(value, value) for value in values]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value():
            return queryset.filter(**{f"analyses__{self.field}": self.value()}).distinct()
        return queryset


class SentimentFilter(_AnalysisValueFilter):
    title = _("sentiment")
    parameter_name = "sentiment"
    field = "sentiment_label"


class ResolutionFilter(_AnalysisValueFilter):
    title = _("resolution")
    parameter_name = "resolution"
    field = "resolution_status"


class TopicFilter(admin.SimpleListFilter):
    """The most common topics of the latest analyses; a call matches when one of its
    analyses names the topic."""

    title = _("topic")
    parameter_name = "topic"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        topics: Counter[str] = Counter()
        recent = CallAnalysis.objects.filter(state=AnalysisState.FETCHED).order_by("-fetched_at")
        for found in recent.values_list("main_topics", flat=True)[:RECENT_ANALYSES]:
            if isinstance(found, list):
                topics.update(t.lower() for t in found if isinstance(t, str))
        return [(topic, topic) for topic, _count in topics.most_common(FILTER_CHOICES)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value():
            return queryset.filter(analyses__main_topics__icontains=self.value()).distinct()
        return queryset


class WebhookEventInline(admin.TabularInline):
    model = WebhookEvent
    fields = ("received_at", "event_type", "state", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = _("webhook events from VoiceHub")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _pretty_json(value: Any) -> SafeString:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    """Every event VoiceHub posted, as it came, and what processing it did."""

    list_display = ["received_at", "agent", "event_type", "state", "voicehub_call_id", "call"]
    list_filter = ["state", "event_type", "agent"]
    search_fields = ["event_id", "voicehub_call_id"]
    date_hierarchy = "received_at"
    list_select_related = ["agent", "call"]
    actions = ["process_events_again"]
    fields = readonly_fields = (
        "agent",
        "event_type",
        "event_id",
        "voicehub_call_id",
        "call",
        "received_at",
        "processed_at",
        "state",
        "error",
        "payload_json",
    )

    @admin.display(description=_("payload"))
    def payload_json(self, event: WebhookEvent) -> SafeString:
        return _pretty_json(event.payload)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_process_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("webcall_widget.change_webhookevent"))

    @admin.action(description=_("Process selected events again"), permissions=["process"])
    def process_events_again(self, request: HttpRequest, queryset: QuerySet[WebhookEvent]) -> None:
        upstream = configured_upstream(request, get_settings())
        count = process_again(queryset.select_related("agent"), upstream=upstream)
        self.message_user(
            request,
            ngettext(
                "Processed %(count)d event again.", "Processed %(count)d events again.", count
            )
            % {"count": count},
            messages.SUCCESS,
        )


@admin.register(CallAnalysis)
class CallAnalysisAdmin(admin.ModelAdmin):
    """VoiceHub's analyses of calls, with the raw result."""

    list_display = [
        "requested_at",
        "agent",
        "call",
        "state",
        "sentiment_label",
        "resolution_status",
        "attempts",
    ]
    list_filter = ["state", "sentiment_label", "resolution_status", "agent"]
    search_fields = ["analysis_id", "voicehub_call_id", "summary"]
    date_hierarchy = "requested_at"
    list_select_related = ["agent", "call"]
    actions = ["fetch_again"]
    fields = readonly_fields = (
        "agent",
        "call",
        "voicehub_call_id",
        "analysis_id",
        "source_url",
        "state",
        "attempts",
        "error",
        "requested_at",
        "fetched_at",
        "summary",
        "main_topics",
        "sentiment_label",
        "sentiment_score",
        "positive_keywords",
        "negative_keywords",
        "empathy_score",
        "resolution_status",
        "user_interruptions",
        "user_summary",
        "assistant_summary",
        "duration_seconds",
        "raw_json",
    )

    @admin.display(description=_("raw result"))
    def raw_json(self, analysis: CallAnalysis) -> SafeString:
        return _pretty_json(analysis.raw)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_fetch_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("webcall_widget.change_callanalysis"))

    @admin.action(description=_("Fetch selected analyses again"), permissions=["fetch"])
    def fetch_again(self, request: HttpRequest, queryset: QuerySet[CallAnalysis]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        CallAnalysis.objects.filter(pk__in=ids).update(
            state=AnalysisState.PENDING, error="", queued_at=timezone.now()
        )
        for analysis_id in ids:
            fetcher.submit_on_commit(analysis_id)
        self.message_user(
            request,
            ngettext(
                "Fetching %(count)d analysis again.",
                "Fetching %(count)d analyses again.",
                len(ids),
            )
            % {"count": len(ids)},
            messages.SUCCESS,
        )
