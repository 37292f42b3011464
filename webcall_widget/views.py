"""HTTP endpoints: the widget's configuration and call creation.

Errors have the app's one JSON shape (:mod:`webcall_widget.http`).
"""

from __future__ import annotations

import json
import logging

from django.conf import settings as django_settings
from django.http import HttpRequest, JsonResponse
from django.templatetags.static import static
from django.urls import reverse
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from webcall_widget import access, assets, calls, limits, origins
from webcall_widget.conf import Settings, get_settings
from webcall_widget.http import answers_outages, client_ip, read_body, visitor_error
from webcall_widget.models import Agent
from webcall_widget.redaction import hide_marked_values_in_debug
from webcall_widget.relay import tokens
from webcall_widget.relay.protocol import CLOSE_CODE_ERRORS, CloseCode
from webcall_widget.strings import widget_strings
from webcall_widget.voicehub.errors import VoiceHubError
from webcall_widget.voicehub.events import Mode

logger = logging.getLogger("webcall_widget.views")

MAX_BODY_BYTES = 4096


def _agent_or_error(request: HttpRequest, slug: str) -> Agent | JsonResponse:
    agent = Agent.objects.filter(slug=slug).first()
    if agent is None:
        return visitor_error(404, "agent_not_found")
    if not origins.is_allowed(
        request.headers.get("Origin"), request.get_host(), agent.origin_list
    ):
        return visitor_error(403, "origin_not_allowed")
    if not agent.is_active:
        return visitor_error(503, "agent_disabled")
    return agent


@require_GET
@answers_outages
def widget_config(request: HttpRequest, slug: str) -> JsonResponse:
    """What the widget needs, in the page's language (``?lang=``) when the site has it."""
    language = _page_language(request.GET.get("lang", ""))
    with translation.override(language):
        return _widget_config(request, slug)


def _page_language(requested: str) -> str:
    try:
        return translation.get_supported_language_variant(requested[:20])
    except LookupError:
        return translation.get_language() or django_settings.LANGUAGE_CODE


def _widget_config(request: HttpRequest, slug: str) -> JsonResponse:
    agent = _agent_or_error(request, slug)
    if isinstance(agent, JsonResponse):
        return agent
    absolute = request.build_absolute_uri
    current = get_settings()
    modules = [absolute(url) for url in assets.module_urls(agent.slug)]
    response = JsonResponse(
        {
            "protocol": 1,
            "language": translation.get_language(),
            "dir": "rtl" if translation.get_language_bidi() else "ltr",
            "strings": widget_strings(),
            "maxTextLength": current.max_text_length,
            "audio": {
                "format": current.browser_audio.encoding,
                "inputRate": current.browser_audio.input_rate,
                "outputRate": current.browser_audio.output_rate,
                "frameMs": current.browser_audio.frame_ms,
            },
            "microphone": {
                "echoCancellation": current.microphone.echo_cancellation,
                "noiseSuppression": current.microphone.noise_suppression,
                "autoGainControl": current.microphone.auto_gain_control,
            },
            "agent": {
                "slug": agent.slug,
                "name": agent.name,
                "title": agent.title or agent.name,
                "subtitle": agent.subtitle,
                "avatarUrl": agent.avatar_url,
                "greeting": agent.greeting,
                "launcherLabel": agent.launcher_label,
                "position": agent.position,
                "colors": {"primary": agent.primary_color, "onPrimary": agent.primary_text_color},
            },
            "modes": [m.value for m in agent.allowed_mode_list],
            "defaultMode": agent.default_mode,
            "createCallUrl": absolute(reverse("webcall_widget:create-call", args=[agent.slug])),
            "assets": {
                "launcherCss": absolute(static("webcall_widget/launcher.css")),
                "css": absolute(static("webcall_widget/widget.css")),
                "app": modules[0],
                "modules": modules[1:],
                "worklet": absolute(assets.worklet_url(request, agent.slug)),
            },
            "relay": {
                # The relay's URL for a token is this prefix, the token and a slash.
                "socket": _socket_url(request, current, "-").removesuffix("-/"),
                "start": _socket_url(request, current, f"start/{agent.slug}"),
                "closeCodes": CLOSE_CODE_ERRORS,
                "moving": int(CloseCode.MOVING),
            },
        }
    )
    response["Cache-Control"] = "no-cache"
    return response


@csrf_exempt  # JSON only: a cross-site form cannot send it without a CORS preflight.
@require_POST
# The agent (and so its API key) is a local here and in what this calls: an error page
# or report must not show them, even with DEBUG on.
@hide_marked_values_in_debug
@sensitive_post_parameters()
@sensitive_variables("agent", "api_key")
@answers_outages
def create_call(request: HttpRequest, slug: str) -> JsonResponse:
    if request.content_type != "application/json":
        return visitor_error(415, "invalid_request", "Send the request as application/json.")
    body = read_body(request, MAX_BODY_BYTES)
    if body is None:
        return visitor_error(
            413, "invalid_request", f"The request is over {MAX_BODY_BYTES} bytes."
        )
    agent = _agent_or_error(request, slug)
    if isinstance(agent, JsonResponse):
        return agent
    refused = access.refusal(agent.access, getattr(request, "user", None))
    if refused is not None:
        return visitor_error(403, refused)
    mode = _requested_mode(body, agent)
    if isinstance(mode, JsonResponse):
        return mode
    settings = get_settings()
    visitor = calls.Visitor(
        ip=client_ip(request, settings.trusted_proxies),
        origin=request.headers.get("Origin", ""),
        user=getattr(request, "user", None),
    )
    try:
        base_url = calls.upstream_url(settings, request.build_absolute_uri("/"))
        call = calls.start(agent, mode, visitor, settings, base_url=base_url, request=request)
    except limits.LimitExceeded as exc:
        return visitor_error(exc.http_status, exc.code, Retry_After=str(exc.retry_after))
    except VoiceHubError as exc:
        return visitor_error(exc.http_status, exc.code)
    token = tokens.issue(call.id)
    return JsonResponse(
        {
            "call": str(call.id),
            "mode": mode.value,
            "socket": _socket_url(request, settings, token),
            "expiresIn": settings.connect_token_max_age,
        },
        status=201,
    )


def _requested_mode(body: bytes, agent: Agent) -> Mode | JsonResponse:
    try:
        data = json.loads(body or b"{}")
    except (ValueError, RecursionError):
        # RecursionError: nested deeper than the recursion limit ("[" * 4000 fits).
        data = None
    if not isinstance(data, dict):
        return visitor_error(400, "invalid_request", "The request must be a JSON object.")
    requested = data.get("mode", agent.default_mode)
    if not isinstance(requested, str) or requested not in Mode._value2member_map_:
        return visitor_error(
            400, "invalid_request", "mode must be one of text, WebAudio, TextAudio."
        )
    if not agent.allows_mode(requested):
        return visitor_error(400, "mode_not_allowed")
    return Mode(requested)


def _socket_url(request: HttpRequest, settings: Settings, token: str) -> str:
    if settings.socket_url:
        return f"{settings.socket_url}/{token}/"
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host()}{settings.socket_path}{token}/"
