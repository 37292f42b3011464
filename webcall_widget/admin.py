from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from webcall_widget.embed import script_tag
from webcall_widget.forms import AgentAdminForm
from webcall_widget.models import Agent, Call, CallStatus, TranscriptMessage
from webcall_widget.relay.control import end_call


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    form = AgentAdminForm
    list_display = ["name", "slug", "is_active", "mode_list", "voicehub_agent_id", "has_key"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug", "voicehub_agent_id"]
    prepopulated_fields = {"slug": ["name"]}
    fieldsets = [
        (None, {"fields": ["name", "slug", "is_active"]}),
        (_("VoiceHub"), {"fields": ["voicehub_agent_id", "api_key"]}),
        (_("Conversation"), {"fields": ["modes", "default_mode", "allowed_origins"]}),
        (
            _("Access and limits"),
            {
                "fields": [
                    "access",
                    "max_concurrent_calls",
                    "max_calls_per_day",
                    "max_call_seconds",
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
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description=_("modes"))
    def mode_list(self, agent: Agent) -> str:
        return ", ".join(agent.modes)

    @admin.display(description=_("key stored"), boolean=True)
    def has_key(self, agent: Agent) -> bool:
        return bool(agent.api_key)


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
    list_display = ["created_at", "agent", "mode", "status", "end_reason", "duration"]
    list_filter = ["status", "mode", "agent"]
    search_fields = ["id", "voicehub_call_id", "origin"]
    date_hierarchy = "created_at"
    inlines = [TranscriptInline]
    actions = ["end_calls"]
    readonly_fields = (
        "id",
        "agent",
        "mode",
        "status",
        "voicehub_call_id",
        "origin",
        "client_ip",
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
    )
    fields = readonly_fields

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
    def end_calls(self, request: HttpRequest, queryset: QuerySet[Call]) -> None:
        live = list(queryset.filter(status__in=[CallStatus.CONNECTING, CallStatus.LIVE]))
        for call in live:
            end_call(call.id)
        self.message_user(
            request,
            ngettext(
                "Asked %(count)d live call to end.",
                "Asked %(count)d live calls to end.",
                len(live),
            )
            % {"count": len(live)},
            messages.SUCCESS if live else messages.WARNING,
        )
