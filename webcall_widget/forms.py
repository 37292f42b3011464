from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from webcall_widget.models import MODE_CHOICES, Agent


class AgentAdminForm(forms.ModelForm):
    """The API key is write-only: never rendered back, and a blank field keeps it."""

    api_key = forms.CharField(
        label=_("VoiceHub API key"),
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

    def clean_api_key(self) -> str:
        new_key: str = self.cleaned_data.get("api_key") or ""
        if new_key:
            return new_key
        return str(self.instance.api_key or "")
