"""The demo site's pages: the template-tag embed, a strict-CSP page and a plain-script page."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable

from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponsePermanentRedirect,
)
from django.shortcuts import render
from django.templatetags.static import static
from django.utils import translation

from webcall_widget.embed import is_slug, script_tag
from webcall_widget.models import Agent

DEFAULT_AGENT = "echo"
STRICT_CSP = (
    "default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def _context(request: HttpRequest, **extra: object) -> dict[str, object]:
    slug = request.GET.get("agent", DEFAULT_AGENT)
    language = request.GET.get("lang") or translation.get_language()
    return {
        "slug": slug,
        "page_language": language,
        "agents": Agent.objects.filter(is_active=True),
        **extra,
    }


def _agent_must_be_a_slug(
    view: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """``?agent=`` names an agent by its slug; anything else is a 400 that says so."""

    @functools.wraps(view)
    def checked(request: HttpRequest) -> HttpResponse:
        if not is_slug(request.GET.get("agent", DEFAULT_AGENT)):
            return HttpResponseBadRequest(
                "?agent= must be an agent's slug: letters, digits, hyphens and underscores, "
                "such as ?agent=echo.",
                content_type="text/plain; charset=utf-8",
            )
        return view(request)

    return checked


@_agent_must_be_a_slug
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "index.html", _context(request))


@_agent_must_be_a_slug
def strict_csp(request: HttpRequest) -> HttpResponse:
    """The widget under ``script-src 'self'; style-src 'self'`` plus a nonce."""
    nonce = secrets.token_urlsafe(16)
    response = render(request, "strict_csp.html", _context(request, csp_nonce=nonce))
    response["Content-Security-Policy"] = STRICT_CSP.format(nonce=nonce)
    return response


@_agent_must_be_a_slug
def plain_embed(request: HttpRequest) -> HttpResponse:
    """The snippet a site that is not Django pastes, with absolute URLs."""
    context = _context(request)
    base_url = f"{request.scheme}://{request.get_host()}"
    context["snippet"] = script_tag(str(context["slug"]), base_url=base_url)
    return render(request, "plain_embed.html", context)


def favicon(request: HttpRequest) -> HttpResponse:
    return HttpResponsePermanentRedirect(static("demo/favicon.svg"))
