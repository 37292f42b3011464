"""The webhook endpoint, ``POST agents/<slug>/webhook``, where VoiceHub posts call events.

Answers (JSON, for VoiceHub, not for people):

* 200 ``{"status": <the event's state>}``: stored (and processed, as far as it can be
  now); 200 ``{"status": "duplicate"}``: an event already stored, e.g. VoiceHub's retry;
* 401 ``invalid_secret``: ``x-webhook-secret`` is missing or wrong, or the agent has no
  secret set. Nothing is stored; a warning is logged (``webcall_widget.webhooks``);
* 404 ``agent_not_found``; 413 body over ``WEBHOOKS.MAX_BODY_BYTES``; 400 a body that is
  not a JSON object.
"""

from __future__ import annotations

import hmac
import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_POST

from webcall_widget.conf import get_settings
from webcall_widget.http import client_ip, error_response, read_body
from webcall_widget.models import Agent, Call
from webcall_widget.redaction import hide_marked_values_in_debug
from webcall_widget.signals import send_robustly, webhook_received
from webcall_widget.webhooks import processing
from webcall_widget.webhooks.analysis import configured_upstream
from webcall_widget.webhooks.errors import BadEvent
from webcall_widget.webhooks.events import HEADER_SECRET, parse_body

logger = logging.getLogger("webcall_widget.webhooks")


@csrf_exempt  # VoiceHub is no browser; the secret is what authenticates it
@require_POST
# The agent holds the API key and the secret; error pages must show neither.
@hide_marked_values_in_debug
@sensitive_variables("agent", "given")
def receive_webhook(request: HttpRequest, slug: str) -> JsonResponse:
    settings = get_settings()
    agent = Agent.objects.filter(slug=slug).first()
    client = client_ip(request, settings.trusted_proxies) or "an unknown address"
    if agent is None:
        logger.warning("Webhook for unknown agent %r refused (from %s).", slug[:100], client)
        return error_response(404, "agent_not_found", "No agent has this slug.")
    given = request.headers.get(HEADER_SECRET)
    refusal = _secret_refusal(agent, given)
    if refusal is not None:
        logger.warning("Webhook for agent %s refused: %s (from %s).", agent.slug, refusal, client)
        return error_response(401, "invalid_secret", "Wrong or missing x-webhook-secret.")
    body = read_body(request, settings.webhooks.max_body_bytes)
    if body is None:
        logger.warning(
            "Webhook for agent %s refused: the body is over %d bytes (WEBHOOKS.MAX_BODY_BYTES).",
            agent.slug,
            settings.webhooks.max_body_bytes,
        )
        return error_response(413, "too_large", "The body is too large.")
    try:
        parsed = parse_body(body)
    except BadEvent as exc:
        logger.warning("Webhook for agent %s refused: %s.", agent.slug, exc)
        return error_response(400, "invalid_request", f"Refused: {exc}.")
    event = processing.store(agent, parsed)
    if event is None:
        logger.info("Webhook for agent %s: event %s already stored.", agent.slug, parsed.key)
        return JsonResponse({"status": "duplicate"})
    processing.process(event, upstream=configured_upstream(request, settings))
    call: Call | None = event.call
    send_robustly(
        webhook_received,
        type(event),
        about=f"Webhook event {event.pk}",
        event=event,
        agent=agent,
        event_type=event.event_type,
        payload=event.payload,
        call=call,
    )
    return JsonResponse({"status": event.state})


@sensitive_variables("given", "expected")
def _secret_refusal(agent: Agent, given: str | None) -> str | None:
    """Why the secret is refused, in words that quote neither secret; None if it matches."""
    expected = agent.webhook_secret
    if not expected:
        return "the agent has no webhook secret (set one in the admin)"
    if given is None:
        return f"no {HEADER_SECRET} header"
    if not hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    ):
        return f"wrong {HEADER_SECRET}"
    return None
