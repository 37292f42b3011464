from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import formats, timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from webcall_widget.embed import script_tag
from webcall_widget.export import calls_csv
from webcall_widget.forms import AgentAdminForm
from webcall_widget.limits import pending_refusals
from webcall_widget.models import (
    Agent,
    Call,
    CallAnalysis,
    CallQuerySet,
    Limit,
    LimitHit,
    TranscriptMessage,
)
from webcall_widget.redaction import use_key_safe_filter
from webcall_widget.relay.mailbox import end_call
from webcall_widget.usage import usage
from webcall_widget.webhooks import admin as webhooks_admin

logger = logging.getLogger("webcall_widget.admin")

USAGE_DAYS = (7, 30, 90, 365)


def _today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def _hits_today(agent: Agent) -> list[tuple[LimitHit, int]]:
    """The agent's limits hit today (UTC), each with its count of refusals so far."""
    hits: list[LimitHit] | None = getattr(agent, "hits_today", None)
    if hits is None:
        hits = list(agent.limit_hits.filter(day=_today()))
    pending = pending_refusals(hits)
    return [(hit, hit.count + pending.get(hit.pk, 0)) for hit in hits]


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    form = AgentAdminForm
    list_display = [
        "name",
        "slug",
        "is_active",
        "mode_list",
        "voicehub_agent_id",
        "has_key",
        "has_webhook_secret",
        "limits_today",
    ]
    list_filter = ["is_active"]
    search_fields = ["name", "slug", "voicehub_agent_id"]
    prepopulated_fields = {"slug": ["name"]}
    fieldsets = [
        (None, {"fields": ["name", "slug", "is_active"]}),
        (_("VoiceHub"), {"fields": ["voicehub_agent_id", "api_key", "webhook_secret"]}),
        (_("Conversation"), {"fields": ["modes", "default_mode", "allowed_origins"]}),
        (
            _("Access and limits"),
            {
                "fields": [
                    "access",
                    "max_concurrent_calls",
                    "max_calls_per_day",
                    "max_call_seconds",
                    "max_call_minutes_per_day",
                    "resume_seconds",
                    "limits_reached_today",
                ]
            },
        ),
        (
            _("Look and text"),
            {
                "fields": [
                    "title",
                    "subtitle",
                    "avatar_url",
                    "greeting",
                    "launcher_label",
                    "position",
                    "primary_color",
                    "primary_text_color",
                ]
            },
        ),
    ]

    readonly_fields = ["limits_reached_today"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Agent]:
        today = LimitHit.objects.filter(day=_today()).order_by("limit")
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("limit_hits", queryset=today, to_attr="hits_today"))
        )

    # The API key and the webhook secret are posted to the add and change pages and saved
    # from them: error pages and reports must show neither the posted fields nor the locals
    # holding them, even with DEBUG on.
    @method_decorator(sensitive_post_parameters("api_key", "webhook_secret"))
    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        use_key_safe_filter(request)
        return super().changeform_view(request, object_id, form_url, extra_context)

    @sensitive_variables()
    def save_model(self, request: HttpRequest, obj: Agent, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Agent | None = None,
    ) -> Any:
        if obj is not None and obj.pk:
            base_url = f"{request.scheme}://{request.get_host()}"
            context["embed_template_tag"] = (
                '{% load webcall_widget %}{% webcall_widget "' + obj.slug + '" %}'
            )
            context["embed_script_tag"] = script_tag(obj.slug, base_url=base_url)
            context["webhook_url"] = base_url + reverse("webcall_widget:webhook", args=[obj.slug])
            context["usage_url"] = reverse("admin:webcall_widget_agent_usage") + f"?agent={obj.pk}"
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self) -> list[URLPattern]:
        usage_url = path(
            "usage/",
            self.admin_site.admin_view(self.usage_view),
            name="webcall_widget_agent_usage",
        )
        return [usage_url, *super().get_urls()]

    def usage_view(self, request: HttpRequest) -> TemplateResponse:
        """Calls created, connected and refused, minutes talked and end reasons, per agent
        and UTC day (:mod:`webcall_widget.usage`)."""
        if not (
            self.has_view_permission(request) and request.user.has_perm("webcall_widget.view_call")
        ):
            raise PermissionDenied
        wanted = request.GET.get("days", "")
        days = int(wanted) if wanted in {str(d) for d in USAGE_DAYS} else 30
        agents = list(Agent.objects.only("pk", "name"))
        chosen = request.GET.get("agent", "")
        agent_id = next((a.pk for a in agents if str(a.pk) == chosen), None)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Usage"),
            "opts": self.model._meta,
            "report": usage(days, agent_id=agent_id),
            "agents": agents,
            "agent_id": agent_id,
            "days": days,
            "day_choices": USAGE_DAYS,
            "limits": Limit,
        }
        return TemplateResponse(request, "admin/webcall_widget/usage.html", context)

    @admin.display(description=_("modes"))
    def mode_list(self, agent: Agent) -> str:
        return ", ".join(agent.modes)

    @admin.display(description=_("key stored"), boolean=True)
    def has_key(self, agent: Agent) -> bool:
        return bool(agent.api_key)

    @admin.display(description=_("webhooks"), boolean=True)
    def has_webhook_secret(self, agent: Agent) -> bool:
        return bool(agent.webhook_secret)

    @admin.display(description=_("limits reached today"))
    def limits_today(self, agent: Agent) -> SafeString | str:
        return format_html_join(
            mark_safe("<br>"),
            "{}: {}",
            ((Limit(hit.limit).label, count) for hit, count in _hits_today(agent)),
        )

    @admin.display(description=_("limits reached today (UTC)"))
    def limits_reached_today(self, agent: Agent) -> SafeString | str:
        hits = _hits_today(agent) if agent.pk else []
        if not hits:
            return str(_("None: no call was refused today."))
        rows = (
            (
                Limit(hit.limit).label,
                ngettext("%(count)d refusal", "%(count)d refusals", count) % {"count": count},
                formats.localize(timezone.localtime(hit.last_at)),
            )
            for hit, count in hits
        )
        return format_html(
            "<ul>{}</ul>{}",
            format_html_join("", "<li>{}: {}, last at {}</li>", rows),
            _(
                "Each limit is logged, and sent as the limit_reached signal, once an hour "
                "(the daily ones once a day); every refusal is counted here."
            ),
        )


class TranscriptInline(admin.TabularInline):
    model = TranscriptMessage
    fields = ("seq", "created_at", "role", "text", "final")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "agent",
        "mode",
        "status",
        "end_reason",
        "duration",
        "voicehub_status",
        "sentiment",
    ]
    list_filter = [
        "status",
        "mode",
        "agent",
        "voicehub_status",
        webhooks_admin.SentimentFilter,
        webhooks_admin.ResolutionFilter,
        webhooks_admin.TopicFilter,
    ]
    search_fields = ["id", "voicehub_call_id", "origin", "analyses__summary"]
    date_hierarchy = "created_at"
    list_select_related = ["agent"]
    inlines = [TranscriptInline, webhooks_admin.WebhookEventInline]
    actions = ["end_calls", "export_csv"]

    readonly_fields = (
        "id",
        "agent",
        "mode",
        "status",
        "voicehub_call_id",
        "origin",
        "client_ip",
        "client_key",
        "user",
        "created_at",
        "connected_at",
        "live_at",
        "ended_at",
        "end_reason",
        "error_code",
        "error_detail",
        "messages_from_visitor",
        "messages_from_agent",
        "audio_bytes_in",
        "audio_bytes_out",
        "audio_bytes_dropped_in",
        "audio_bytes_dropped_out",
        "upstream_unknown_events",
        "upstream_bad_payloads",
        "upstream_notes",
        "suspensions",
        "resumes",
        "suspended_seconds",
        "voicehub_status",
        "voicehub_status_at",
        "recording_links",
        "analysis",
    )
    fields = readonly_fields

    class Media:
        css = {"all": ["webcall_widget/admin.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Call]:
        analyses = CallAnalysis.objects.order_by("-requested_at")
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("analyses", queryset=analyses, to_attr="analysis_list"))
        )

    @admin.display(description=_("recordings"))
    def recording_links(self, call: Call) -> SafeString | str:
        return webhooks_admin.recording_links(call)

    @admin.display(description=_("analysis"))
    def analysis(self, call: Call) -> SafeString | str:
        return webhooks_admin.analysis_overview(call)

    @admin.display(description=_("sentiment"))
    def sentiment(self, call: Call) -> str:
        return webhooks_admin.sentiment_of(call)

    def has_export_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("webcall_widget.view_call"))

    @admin.action(
        description=_("Export selected calls as CSV, with transcripts"), permissions=["export"]
    )
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Call]) -> HttpResponse:
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response = HttpResponse(calls_csv(queryset), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="webcalls-{stamp}.csv"'
        return response

    @admin.display(description=_("duration (s)"))
    def duration(self, call: Call) -> str:
        seconds = call.duration_seconds
        return "" if seconds is None else f"{seconds:.0f}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_end_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("webcall_widget.change_call"))

    @admin.action(description=_("End selected calls"), permissions=["end"])
    def end_calls(self, request: HttpRequest, queryset: CallQuerySet) -> None:
        """Ask each live call's relay process to end it, through the channel layer; a
        layer that does not answer (Redis down) ends none of them, and staff are told."""
        live = list(queryset.open())
        unreached = 0
        for call in live:
            try:
                end_call(call.id)
            except Exception:
                logger.exception("Call %s: could not ask its relay process to end it.", call.id)
                unreached += 1
        asked = len(live) - unreached
        if asked or not unreached:
            self.message_user(
                request,
                ngettext(
                    "Asked %(count)d live call to end.",
                    "Asked %(count)d live calls to end.",
                    asked,
                )
                % {"count": asked},
                messages.SUCCESS if asked else messages.WARNING,
            )
        if unreached:
            self.message_user(
                request,
                ngettext(
                    "Could not ask %(count)d live call to end: the channel layer (Redis) "
                    "did not answer. Try again in a moment.",
                    "Could not ask %(count)d live calls to end: the channel layer (Redis) "
                    "did not answer. Try again in a moment.",
                    unreached,
                )
                % {"count": unreached},
                messages.ERROR,
            )


@admin.register(LimitHit)
class LimitHitAdmin(admin.ModelAdmin):
    """A read-only history of the limits that refused calls, a row per agent, limit and day."""

    list_display = ["day", "agent", "limit", "count", "last_at", "last_client_key"]
    list_filter = ["limit", "day", "agent"]
    date_hierarchy = "day"
    fields = readonly_fields = ("day", "agent", "limit", "count", "last_at", "last_client_key")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
