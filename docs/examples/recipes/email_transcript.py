"""E-mail the transcript of every finished conversation to the people who follow up on
them. In settings.py::

    WEBCALL_TRANSCRIPTS_TO = ["support@example.com"]

and import this module from one of your apps' ``AppConfig.ready()`` so that the receiver
is connected.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.dispatch import receiver

from webcall_widget.models import Call
from webcall_widget.signals import call_ended

# The receiver runs in the relay's worker thread: the mail server's time is spent here.
mailer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="transcripts")


@receiver(call_ended)
def email_the_transcript(
    sender: type[Call], call: Call, reason: str, status: str, duration: float | None, **kwargs: Any
) -> None:
    lines = [f"{m.get_role_display()}: {m.text}" for m in call.messages.filter(final=True)]
    if not lines:
        return  # nothing was said
    length = f"{duration / 60:.1f} min" if duration is not None else "never live"
    mailer.submit(
        send_mail,
        subject=f"Conversation with {call.agent} ({length}, {reason})",
        message="\n\n".join(lines),
        from_email=None,
        recipient_list=settings.WEBCALL_TRANSCRIPTS_TO,
    )
