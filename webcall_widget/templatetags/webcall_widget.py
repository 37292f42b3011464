from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

from webcall_widget.embed import script_tag

register = template.Library()


@register.simple_tag(takes_context=True)
def webcall_widget(context: template.Context, slug: object) -> SafeString:
    """``{% webcall_widget "slug" %}``: the widget for one agent, with the page's CSP nonce."""
    return script_tag(slug, nonce=_nonce(context))


def _nonce(context: template.Context) -> str | None:
    nonce: Any = context.get("csp_nonce")  # Django 6's context processor
    if not nonce:
        request = context.get("request")
        nonce = getattr(request, "csp_nonce", None)  # django-csp, or a site's middleware
    return str(nonce) if nonce else None
