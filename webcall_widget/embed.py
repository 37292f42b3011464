"""The embed: one ``<script>`` tag that loads the widget for an agent."""

from __future__ import annotations

import re
from typing import TypeGuard

from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

SCRIPT = "webcall_widget/widget.js"
# What the URLs' <slug:slug> converter matches, and so what an agent's slug can be.
SLUG = re.compile(r"[-a-zA-Z0-9_]+")


class InvalidSlug(ValueError):
    """Not an agent slug, so no agent URL can be made from it."""


def is_slug(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and SLUG.fullmatch(value) is not None


def script_tag(slug: object, *, nonce: str | None = None, base_url: str = "") -> SafeString:
    """``<script src=... data-agent=... data-config=... defer>``.

    ``base_url`` (scheme and host, no trailing slash) makes every URL absolute, for the
    snippet a site that is not this Django site pastes into its pages.

    Raises:
        InvalidSlug: ``slug`` is not a slug (letters, digits, hyphens, underscores).
    """
    if not is_slug(slug):
        raise InvalidSlug(
            "webcall_widget needs an agent slug (letters, digits, hyphens and underscores), "
            f"such as {{% webcall_widget 'help' %}}, not {repr(slug)[:60]}."
        )
    src = static(SCRIPT)
    if base_url and not src.startswith(("http://", "https://", "//")):
        src = base_url + src
    config = base_url + reverse("webcall_widget:widget-config", args=[slug])
    if nonce:
        return format_html(
            '<script src="{}" data-agent="{}" data-config="{}" nonce="{}" defer></script>',
            src,
            slug,
            config,
            nonce,
        )
    return format_html(
        '<script src="{}" data-agent="{}" data-config="{}" defer></script>', src, slug, config
    )
