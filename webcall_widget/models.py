from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from webcall_widget.origins import parse_origin_list
from webcall_widget.voicehub.events import Mode, Role

MODE_CHOICES = [
    (Mode.TEXT.value, _("Text chat")),
    (Mode.WEB_AUDIO.value, _("Voice")),
    (Mode.TEXT_AUDIO.value, _("Voice and text")),
]

hex_colour = RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Use a colour such as #1f6feb."))


def default_modes() -> list[str]:
    return [Mode.TEXT.value]


class Access(models.TextChoices):
    ANYONE = "anyone", _("Anyone")
    AUTHENTICATED = "authenticated", _("Logged-in users")
    STAFF = "staff", _("Staff only")


class Position(models.TextChoices):
    BOTTOM_RIGHT = "bottom-right", _("Bottom right")
    BOTTOM_LEFT = "bottom-left", _("Bottom left")


class Agent(models.Model):
    """A VoiceHub agent that visitors can talk to through the widget."""

    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(
        _("slug"), unique=True, help_text=_('Used in the embed: {% webcall_widget "slug" %}')
    )
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("Inactive agents take no new calls.")
    )
    voicehub_agent_id = models.CharField(_("VoiceHub agent id"), max_length=200)
    api_key = models.CharField(_("VoiceHub API key"), max_length=500)
    modes = models.JSONField(
        _("allowed modes"),
        default=default_modes,
        help_text=_("What visitors may choose. Every joined channel costs credits."),
    )
    default_mode = models.CharField(
        _("default mode"), max_length=16, choices=MODE_CHOICES, default=Mode.TEXT.value
    )
    allowed_origins = models.TextField(
        _("allowed origins"),
        blank=True,
        help_text=_(
            "Other sites that may embed this agent, one origin per line, e.g. "
            "https://www.example.com. This site itself is always allowed."
        ),
    )

    access = models.CharField(
        _("who may call"),
        max_length=16,
        choices=Access.choices,
        default=Access.ANYONE,
        help_text=_("Checked when a call is created and again when its socket opens."),
    )
    max_concurrent_calls = models.PositiveIntegerField(
        _("open calls at once"),
        null=True,
        blank=True,
        help_text=_("Empty: the site's default (LIMITS.CONCURRENT_CALLS_PER_AGENT)."),
    )
    max_calls_per_day = models.PositiveIntegerField(
        _("calls per day"),
        null=True,
        blank=True,
        help_text=_("Per UTC day. Empty: the site's default (LIMITS.CALLS_PER_DAY_PER_AGENT)."),
    )
    max_call_seconds = models.PositiveIntegerField(
        _("longest call (seconds)"),
        null=True,
        blank=True,
        help_text=_("Empty: the site's default (LIMITS.MAX_CALL_SECONDS)."),
    )

    title = models.CharField(_("title"), max_length=80, blank=True)
    subtitle = models.CharField(_("subtitle"), max_length=160, blank=True)
    avatar_url = models.URLField(_("avatar image URL"), blank=True)
    greeting = models.CharField(
        _("empty-state text"),
        max_length=240,
        blank=True,
        help_text=_("Shown in the panel before the conversation starts."),
    )
    launcher_label = models.CharField(_("launcher label"), max_length=40, blank=True)
    position = models.CharField(
        _("position"), max_length=16, choices=Position.choices, default=Position.BOTTOM_RIGHT
    )
    primary_color = models.CharField(
        _("primary colour"), max_length=7, default="#1f6feb", validators=[hex_colour]
    )
    primary_text_color = models.CharField(
        _("text colour on primary"), max_length=7, default="#ffffff", validators=[hex_colour]
    )

    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("agent")
        verbose_name_plural = _("agents")

    def __str__(self) -> str:
        return self.name

    @property
    def allowed_mode_list(self) -> list[Mode]:
        return [Mode(m) for m in self.modes if m in Mode._value2member_map_]

    @property
    def origin_list(self) -> list[str]:
        return parse_origin_list(self.allowed_origins)

    def allows_mode(self, mode: str) -> bool:
        return mode in self.modes

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        modes = self.modes if isinstance(self.modes, list) else []
        valid = {m.value for m in Mode}
        if not modes or any(m not in valid for m in modes):
            errors.setdefault("modes", []).append(str(_("Choose at least one mode.")))
        elif self.default_mode not in modes:
            errors.setdefault("default_mode", []).append(
                str(_("The default mode must be one of the allowed modes."))
            )
        try:
            parse_origin_list(self.allowed_origins, strict=True)
        except ValueError as exc:
            errors.setdefault("allowed_origins", []).append(str(exc))
        if errors:
            raise ValidationError(errors)


class CallStatus(models.TextChoices):
    CREATED = "created", _("Created")
    CONNECTING = "connecting", _("Connecting")
    LIVE = "live", _("Live")
    ENDED = "ended", _("Ended")
    FAILED = "failed", _("Failed")


class Call(models.Model):
    """One conversation; created by the create-call endpoint, driven by the relay."""

    id = models.UUIDField(_("call id"), primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(
        Agent, on_delete=models.PROTECT, related_name="calls", verbose_name=_("agent")
    )
    mode = models.CharField(_("mode"), max_length=16, choices=MODE_CHOICES)
    status = models.CharField(
        _("status"), max_length=16, choices=CallStatus.choices, default=CallStatus.CREATED
    )
    voicehub_call_id = models.CharField(_("VoiceHub call id"), max_length=200, blank=True)
    upstream_url = models.CharField(_("upstream URL"), max_length=500, blank=True)
    upstream_socket_path = models.CharField(_("upstream socket path"), max_length=500, blank=True)
    origin = models.CharField(_("page origin"), max_length=300, blank=True)
    client_ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )

    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    connected_at = models.DateTimeField(_("visitor connected"), null=True, blank=True)
    live_at = models.DateTimeField(_("live"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    end_reason = models.CharField(_("end reason"), max_length=64, blank=True)
    error_code = models.CharField(_("error code"), max_length=64, blank=True)
    error_detail = models.TextField(_("error detail"), blank=True)

    messages_from_visitor = models.PositiveIntegerField(default=0)
    messages_from_agent = models.PositiveIntegerField(default=0)
    audio_bytes_in = models.PositiveBigIntegerField(default=0)
    audio_bytes_out = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("call")
        verbose_name_plural = _("calls")
        indexes = [models.Index(fields=["agent", "status"])]

    def __str__(self) -> str:
        return f"{self.agent_id}:{self.id}"

    @property
    def duration_seconds(self) -> float | None:
        if self.live_at and self.ended_at:
            return (self.ended_at - self.live_at).total_seconds()
        return None


ROLE_CHOICES = [(Role.USER.value, _("Visitor")), (Role.AGENT.value, _("Agent"))]


class TranscriptMessage(models.Model):
    call = models.ForeignKey(
        Call, on_delete=models.CASCADE, related_name="messages", verbose_name=_("call")
    )
    seq = models.PositiveIntegerField(_("order"))
    role = models.CharField(_("role"), max_length=8, choices=ROLE_CHOICES)
    text = models.TextField(_("text"))
    upstream_id = models.CharField(_("upstream message id"), max_length=200, blank=True)
    final = models.BooleanField(
        _("final"), default=True, help_text=_("False when the call ended mid-message.")
    )
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        ordering = ["call", "seq"]
        verbose_name = _("transcript message")
        verbose_name_plural = _("transcript messages")
        constraints = [
            models.UniqueConstraint(fields=["call", "seq"], name="webcall_widget_message_seq")
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:40]}"
