"""Log every call's end, and tell the admins about an unhappy caller when VoiceHub's
analysis of the call says so."""

from __future__ import annotations

import logging
from typing import Any

from django.core.mail import mail_admins
from django.dispatch import receiver

from webcall_widget.models import Agent, Call, CallAnalysis
from webcall_widget.signals import analysis_ready, call_ended

logger = logging.getLogger(__name__)


@receiver(call_ended)
def log_the_call(
    sender: type[Call], call: Call, reason: str, status: str, duration: float | None, **kwargs: Any
) -> None:
    logger.info("Call %s to %s: %s after %s s", call.pk, call.agent, reason, duration)


@receiver(analysis_ready)
def flag_unhappy_callers(
    sender: type[CallAnalysis],
    analysis: CallAnalysis,
    agent: Agent,
    call: Call | None,
    **kwargs: Any,
) -> None:
    if analysis.sentiment_label == "negative":
        mail_admins(f"An unhappy caller of {agent}", analysis.summary)
