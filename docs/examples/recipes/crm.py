"""Push each finished call to a CRM, then add VoiceHub's analysis when it arrives.

The CRM here takes JSON over HTTPS with a bearer token: ``POST {CRM_URL}/calls`` creates
the record, ``PATCH {CRM_URL}/calls/<id>`` adds to it. In settings.py::

    CRM_URL = "https://crm.example/api"
    CRM_TOKEN = os.environ["CRM_TOKEN"]

and import this module from one of your apps' ``AppConfig.ready()``.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from django.conf import settings
from django.dispatch import receiver

from webcall_widget.models import Agent, Call, CallAnalysis
from webcall_widget.signals import analysis_ready, call_ended

logger = logging.getLogger(__name__)

# Receivers run where the event happens (the relay's worker thread, the analysis fetch):
# the CRM's time is spent in a thread of its own, one request at a time, in order.
crm = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crm")


def send(method: str, path: str, data: dict[str, Any]) -> None:
    try:
        response = requests.request(
            method,
            settings.CRM_URL + path,
            json=data,
            headers={"Authorization": f"Bearer {settings.CRM_TOKEN}"},
            timeout=10,
        )
        response.raise_for_status()
    except requests.RequestException:
        logger.exception("The CRM refused %s %s", method, path)


@receiver(call_ended)
def push_the_call(
    sender: type[Call], call: Call, reason: str, status: str, duration: float | None, **kwargs: Any
) -> None:
    record = {
        "id": str(call.pk),
        "agent": call.agent.slug,
        "mode": call.mode,
        "started": call.created_at.isoformat(),
        "ended": call.ended_at.isoformat() if call.ended_at else None,
        "seconds": duration,
        "outcome": reason,
        "transcript": [{"role": m.role, "text": m.text} for m in call.messages.filter(final=True)],
    }
    crm.submit(send, "POST", "/calls", record)


@receiver(analysis_ready)
def add_the_analysis(
    sender: type[CallAnalysis],
    analysis: CallAnalysis,
    agent: Agent,
    call: Call | None,
    **kwargs: Any,
) -> None:
    if call is None:
        return  # an analysis of a call this site never made
    summary = {
        "summary": analysis.summary,
        "sentiment": analysis.sentiment_label,
        "resolution": analysis.resolution_status,
        "topics": analysis.main_topics,
    }
    crm.submit(send, "PATCH", f"/calls/{call.pk}", summary)
