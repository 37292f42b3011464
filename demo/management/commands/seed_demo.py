"""Create the demo's sandbox agents and an admin login; safe to run again."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from webcall_widget.models import Agent
from webcall_widget.sandbox.config import SANDBOX_AGENT_ID, SANDBOX_API_KEY
from webcall_widget.voicehub.events import Mode

DEMO_AGENTS: list[dict[str, Any]] = [
    {
        "slug": "echo",
        "name": "Echo (sandbox)",
        "voicehub_agent_id": SANDBOX_AGENT_ID,
        "api_key": SANDBOX_API_KEY,
        "modes": [Mode.TEXT.value, Mode.TEXT_AUDIO.value, Mode.WEB_AUDIO.value],
        "default_mode": Mode.TEXT.value,
        "title": "Echo assistant",
        "subtitle": "The VoiceHub sandbox: it says back what you say",
        "greeting": "Ask anything: the sandbox agent repeats it back.",
        "launcher_label": "Chat with us",
    },
]


class Command(BaseCommand):
    help = "Create the demo's sandbox agents and an admin user (admin / admin)."

    def handle(self, *args: Any, **options: Any) -> None:
        for fields in DEMO_AGENTS:
            values = dict(fields)
            slug = values.pop("slug")
            agent, created = Agent.objects.get_or_create(slug=slug, defaults=values)
            self.stdout.write(f"Agent {slug!r} {'created' if created else 'already there'}.")
            # The secret the demo's sandbox sends with its webhooks (demo/settings.py).
            secret = getattr(settings, "DEMO_WEBHOOK_SECRET", "")
            if secret and not agent.webhook_secret:
                agent.webhook_secret = secret
                agent.save(update_fields=["webhook_secret"])
        users = get_user_model()
        if not users.objects.filter(username="admin").exists():
            users.objects.create_superuser("admin", "admin@example.com", "admin")
            self.stdout.write("Admin user 'admin' with password 'admin' created.")
