from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from webcall_widget.models import MODE_CHOICES, Agent
from webcall_widget.voicehub.client import describe_character, unsendable_character


@sensitive_variables("value")
def validate_credential(value: str, *, field: str) -> None:
    """VoiceHub's API keys and agent ids go in HTTP headers: printable ASCII, no spaces.

    The message names the character and where it is, never the value.
    """
    found = unsendable_character(value)
    if found is None:
        return
    position, char = found
    raise ValidationError(
        _(
            "The %(field)s contains %(character)s at character %(position)d; it may only "
            "contain printable ASCII characters without spaces. It may have been changed "
            "when it was copied from a document: type it again."
        ),
        code="unsendable",
        params={"field": field, "character": describe_character(char), "position": position},
    )


MIN_WEBHOOK_SECRET_LENGTH = 16


class AgentAdminForm(forms.ModelForm):
    """The API key and the webhook secret are write-only: never rendered back, and a
    blank field keeps them."""

    api_key = forms.CharField(
        label=_("VoiceHub API key"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    webhook_secret = forms.CharField(
        label=_("Webhook secret"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    modes = forms.MultipleChoiceField(
        label=_("Allowed modes"),
        choices=MODE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("What visitors may choose. Every joined channel costs credits."),
    )

    avatar_url = forms.URLField(label=_("Avatar image URL"), required=False, assume_scheme="https")

    class Meta:
        model = Agent
        fields = [
            "name",
            "slug",
            "is_active",
            "voicehub_agent_id",
            "api_key",
            "webhook_secret",
            "modes",
            "default_mode",
            "allowed_origins",
            "access",
            "max_concurrent_calls",
            "max_calls_per_day",
            "max_call_seconds",
            "title",
            "subtitle",
            "avatar_url",
            "greeting",
            "launcher_label",
            "position",
            "primary_color",
            "primary_text_color",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.api_key:
            self.fields["api_key"].help_text = _(
                "A key is stored and is never shown. Leave blank to keep it, or type a "
                "new key to replace it."
            )
        else:
            self.fields["api_key"].required = True
            self.fields["api_key"].help_text = _("Kept on the server; never sent to browsers.")
        if self.instance.pk and self.instance.webhook_secret:
            self.fields["webhook_secret"].help_text = _(
                "A secret is stored and is never shown. Leave blank to keep it, or type a "
                "new one to replace it (and set the same in VoiceHub)."
            )
        else:
            self.fields["webhook_secret"].help_text = _(
                "To receive VoiceHub's call webhooks: at least %(length)d characters, the "
                "same as in VoiceHub's webhook settings for this agent. Empty: webhooks "
                "are refused."
            ) % {"length": MIN_WEBHOOK_SECRET_LENGTH}

    @sensitive_variables("new_key")
    def clean_api_key(self) -> str:
        new_key: str = self.cleaned_data.get("api_key") or ""
        if new_key:
            validate_credential(new_key, field=str(_("API key")))
            return new_key
        return str(self.instance.api_key or "")

    @sensitive_variables("new_secret")
    def clean_webhook_secret(self) -> str:
        new_secret: str = self.cleaned_data.get("webhook_secret") or ""
        if not new_secret:
            return str(self.instance.webhook_secret or "")
        validate_credential(new_secret, field=str(_("webhook secret")))
        if len(new_secret) < MIN_WEBHOOK_SECRET_LENGTH:
            raise ValidationError(
                _(
                    "Use a webhook secret of at least %(length)d characters, e.g. one from "
                    'python -c "import secrets; print(secrets.token_urlsafe(32))".'
                ),
                code="short",
                params={"length": MIN_WEBHOOK_SECRET_LENGTH},
            )
        return new_secret

    def clean_voicehub_agent_id(self) -> str:
        agent_id: str = self.cleaned_data.get("voicehub_agent_id") or ""
        validate_credential(agent_id, field=str(_("VoiceHub agent id")))
        return agent_id

    @sensitive_variables()  # the instance's key, and the SQL parameters below
    def save(self, commit: bool = True) -> Agent:
        agent: Agent = super().save(commit=commit)
        return agent
