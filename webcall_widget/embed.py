"""The embed: one ``<script>`` tag that loads the widget for an agent."""

from __future__ import annotations

from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

SCRIPT = "webcall_widget/widget.js"


def script_tag(slug: object, *, nonce: str | None = None, base_url: str = "") -> SafeString:
    """``<script src=... data-agent=... data-config=... defer>``.

    ``base_url`` (scheme and host, no trailing slash) makes every URL absolute, for the
    snippet a site that is not this Django site pastes into its pages.
    """
    if not isinstance(slug, str) or not slug.strip():
        raise ValueError("webcall_widget needs an agent slug, such as {% webcall_widget 'help' %}")
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
