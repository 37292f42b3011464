"""Tell the site's admins when an agent starts refusing calls: at most once an hour per
agent and limit (the daily limits once a day), however many calls are refused."""

from __future__ import annotations

from typing import Any

from django.core.mail import mail_admins
from django.dispatch import receiver

from webcall_widget.models import Agent
from webcall_widget.signals import limit_reached


@receiver(limit_reached)
def tell_the_owner(
    sender: type[Agent], agent: Agent, limit: str, code: str, client_key: str, **kwargs: Any
) -> None:
    mail_admins(f"{agent} reached a limit", f"{limit} ({code}) {client_key}")
