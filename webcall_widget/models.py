from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from webcall_widget.conf import RESUME_SECONDS_MAX
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
    webhook_secret = models.CharField(
        _("webhook secret"),
        max_length=200,
        blank=True,
        help_text=_(
            "What VoiceHub sends in x-webhook-secret with this agent's call webhooks. "
            "Empty: webhooks for this agent are refused."
        ),
    )
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
    max_call_minutes_per_day = models.PositiveIntegerField(
        _("call minutes per day"),
        null=True,
        blank=True,
        help_text=_(
            "Minutes of live calls per UTC day, all calls together; when they are used up, "
            "new calls are refused and live ones end. Empty: the site's default "
            "(LIMITS.CALL_MINUTES_PER_DAY_PER_AGENT)."
        ),
    )
    resume_seconds = models.PositiveIntegerField(
        _("resume within (seconds)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(RESUME_SECONDS_MAX)],
        help_text=_(
            "How long a call waits for its visitor after their connection drops (a reload, "
            "another page, a network change); it costs credits meanwhile. 0: calls end at "
            "once. Empty: the site's default (RESUME_SECONDS)."
        ),
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


# A socket took the call up and it is not over: it holds a line of its agent.
OPEN_STATUSES = frozenset({CallStatus.CONNECTING, CallStatus.LIVE})
# It ended, or failed: nothing more happens to it but what comes after a call (webhooks).
OVER_STATUSES = frozenset({CallStatus.ENDED, CallStatus.FAILED})


class CallQuerySet(models.QuerySet["Call"]):
    def open(self) -> CallQuerySet:
        return self.filter(status__in=OPEN_STATUSES)

    def over(self) -> CallQuerySet:
        return self.filter(status__in=OVER_STATUSES)


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
    client_key = models.CharField(
        _("client"),
        max_length=64,
        blank=True,
        default="",
        help_text=_("What per-client limits count by: the IPv4 address, or the IPv6 /64."),
    )
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
    voicehub_status = models.CharField(
        _("VoiceHub status"),
        max_length=32,
        blank=True,
        help_text=_("The latest status VoiceHub reported for this call in a webhook."),
    )
    voicehub_status_at = models.DateTimeField(_("VoiceHub status time"), null=True, blank=True)
    recordings = models.JSONField(
        _("recordings"),
        default=list,
        blank=True,
        help_text=_("Paths or URLs of the call's recordings, as VoiceHub reported them."),
    )

    messages_from_visitor = models.PositiveIntegerField(default=0)
    messages_from_agent = models.PositiveIntegerField(default=0)
    audio_bytes_in = models.PositiveBigIntegerField(default=0)
    audio_bytes_out = models.PositiveBigIntegerField(default=0)
    audio_bytes_dropped_in = models.PositiveBigIntegerField(
        _("visitor audio dropped (bytes)"),
        default=0,
        help_text=_(
            "The visitor's audio not sent on, because VoiceHub read it slower than it came."
        ),
    )
    audio_bytes_dropped_out = models.PositiveBigIntegerField(
        _("agent audio dropped (bytes)"),
        default=0,
        help_text=_(
            "The agent's audio not sent on, because the visitor's connection read it slower "
            "than it came."
        ),
    )
    upstream_unknown_events = models.PositiveIntegerField(
        _("unknown upstream events"),
        default=0,
        help_text=_("Events from VoiceHub the relay does not use (see the notes)."),
    )
    upstream_bad_payloads = models.PositiveIntegerField(
        _("unreadable upstream events"),
        default=0,
        help_text=_("Events from VoiceHub whose payload did not match UPSTREAM settings."),
    )
    upstream_notes = models.TextField(
        _("upstream notes"),
        blank=True,
        help_text=_(
            "What the relay noticed about VoiceHub's socket, such as an output sample rate "
            "that looks wrong."
        ),
    )
    suspensions = models.PositiveIntegerField(
        _("connection drops"),
        default=0,
        help_text=_("Times the visitor's connection dropped while the call went on."),
    )
    resumes = models.PositiveIntegerField(
        _("resumes"),
        default=0,
        help_text=_("Times a visitor took the call up again (a reload, another page or tab)."),
    )
    owner = models.CharField(
        _("relay process"),
        max_length=100,
        blank=True,
        help_text=_(
            "The relay process holding the live call. When it stops renewing its lease "
            "(it was stopped or died), another process takes the call over or ends it."
        ),
    )
    suspended_seconds = models.FloatField(
        _("seconds without the visitor"),
        default=0.0,
        help_text=_("Time the call waited for its visitor to come back, all drops together."),
    )

    objects = CallQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("call")
        verbose_name_plural = _("calls")
        indexes = [
            models.Index(fields=["agent", "status"]),
            models.Index(fields=["agent", "client_key", "created_at"]),
            models.Index(fields=["voicehub_call_id"]),
            models.Index(fields=["status", "owner"]),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id}:{self.id}"

    @property
    def duration_seconds(self) -> float | None:
        if self.live_at and self.ended_at:
            return (self.ended_at - self.live_at).total_seconds()
        return None


class Limit(models.TextChoices):
    """Which limit refused a call (a :class:`LimitHit`, the ``limit_reached`` signal)."""

    CLIENT_RATE = "client_rate", _("new calls per client per minute")
    AGENT_RATE = "agent_rate", _("new calls per agent per minute")
    UNCONNECTED = "unconnected", _("unconnected calls per client")
    CONCURRENT = "concurrent", _("calls open at once")
    CALLS_PER_DAY = "calls_per_day", _("calls per day")
    MINUTES_PER_DAY = "minutes_per_day", _("call minutes per day")


class LimitHit(models.Model):
    """How often a limit refused an agent's calls on one UTC day, and when last."""

    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="limit_hits", verbose_name=_("agent")
    )
    day = models.DateField(_("day (UTC)"))
    limit = models.CharField(_("limit"), max_length=32, choices=Limit.choices)
    count = models.PositiveIntegerField(_("refusals"), default=0)
    last_at = models.DateTimeField(_("last refusal"))
    last_client_key = models.CharField(_("last client"), max_length=64, blank=True)

    class Meta:
        ordering = ["-day", "agent", "limit"]
        verbose_name = _("limit reached")
        verbose_name_plural = _("limits reached")
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "day", "limit"], name="webcall_widget_limit_hit_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.agent_id}:{self.day}:{self.limit}"


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


class WebhookEventState(models.TextChoices):
    RECEIVED = "received", _("Received")
    PROCESSED = "processed", _("Processed")
    UNMATCHED = "unmatched", _("No matching call")
    IGNORED = "ignored", _("Unknown type")
    FAILED = "failed", _("Failed")


class WebhookEvent(models.Model):
    """One event VoiceHub posted to an agent's webhook, stored as it came before anything
    else is done with it (see :mod:`webcall_widget.webhooks`)."""

    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="webhook_events", verbose_name=_("agent")
    )
    event_id = models.CharField(
        _("event id"),
        max_length=200,
        help_text=_(
            "VoiceHub's eventId; for an event without one, the analysis id or a hash of "
            "the body. A retry of an event already stored is acknowledged, not processed."
        ),
    )
    event_type = models.CharField(_("type"), max_length=64)
    voicehub_call_id = models.CharField(_("VoiceHub call id"), max_length=200, blank=True)
    call = models.ForeignKey(
        Call,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="webhook_events",
        verbose_name=_("call"),
    )
    payload = models.JSONField(_("payload"))
    received_at = models.DateTimeField(_("received"), auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    state = models.CharField(
        _("state"),
        max_length=16,
        choices=WebhookEventState.choices,
        default=WebhookEventState.RECEIVED,
    )
    error = models.TextField(_("error"), blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "event_id"], name="webcall_widget_webhook_event_id"
            )
        ]
        indexes = [models.Index(fields=["agent", "voicehub_call_id", "state"])]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class AnalysisState(models.TextChoices):
    PENDING = "pending", _("Being fetched")
    FETCHED = "fetched", _("Fetched")
    FAILED = "failed", _("Failed")


class CallAnalysis(models.Model):
    """VoiceHub's analysis of a call, fetched when an ``AnalysisResultReady`` webhook
    names it: the raw JSON, and the fields we know of, read from it defensively."""

    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="analyses", verbose_name=_("agent")
    )
    call = models.ForeignKey(
        Call,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="analyses",
        verbose_name=_("call"),
    )
    voicehub_call_id = models.CharField(_("VoiceHub call id"), max_length=200, blank=True)
    analysis_id = models.CharField(_("analysis id"), max_length=200)
    source_url = models.CharField(_("fetched from"), max_length=2000)
    state = models.CharField(
        _("state"), max_length=16, choices=AnalysisState.choices, default=AnalysisState.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    error = models.TextField(_("error"), blank=True)
    requested_at = models.DateTimeField(_("requested"), auto_now_add=True, db_index=True)
    queued_at = models.DateTimeField(
        _("queued"),
        default=timezone.now,
        db_index=True,
        help_text=_("When its latest fetch was asked for: on arrival, or to fetch it again."),
    )
    fetched_at = models.DateTimeField(_("fetched"), null=True, blank=True)
    raw = models.JSONField(_("raw result"), null=True, blank=True)

    summary = models.TextField(_("summary"), blank=True)
    main_topics = models.JSONField(_("main topics"), default=list, blank=True)
    sentiment_label = models.CharField(_("sentiment"), max_length=32, blank=True, db_index=True)
    sentiment_score = models.FloatField(_("sentiment score"), null=True, blank=True)
    positive_keywords = models.JSONField(_("positive keywords"), default=list, blank=True)
    negative_keywords = models.JSONField(_("negative keywords"), default=list, blank=True)
    empathy_score = models.FloatField(_("empathy score"), null=True, blank=True)
    resolution_status = models.CharField(_("resolution"), max_length=64, blank=True, db_index=True)
    user_interruptions = models.PositiveIntegerField(
        _("visitor interruptions"), null=True, blank=True
    )
    user_summary = models.TextField(_("visitor summary"), blank=True)
    assistant_summary = models.TextField(_("agent summary"), blank=True)
    duration_seconds = models.FloatField(_("duration (s)"), null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        verbose_name = _("call analysis")
        verbose_name_plural = _("call analyses")
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "analysis_id"], name="webcall_widget_analysis_id"
            )
        ]
        indexes = [models.Index(fields=["agent", "voicehub_call_id"])]

    def __str__(self) -> str:
        return f"{self.analysis_id}"
