"""The widget's scripts that the app serves itself: the app's ES modules, and the audio
worklet for pages on other origins.

Browsers fetch module scripts and worklets in CORS mode (a classic ``<script>`` is not),
and a static file server sends no CORS headers. With hashed static names
(``ManifestStaticFilesStorage``) a module's relative ``import "./panel.js"`` would also
name another file than the one shipped beside it. So the modules are served by
:func:`widget_module` from ``agents/<slug>/widget/<version>/<name>.js``:

- the slug lets django-cors-headers answer a page on another origin with the agent's
  allowed origins (:mod:`webcall_widget.cors`), as it does for the config;
- the version is a hash of all the modules, so relative imports stay within one set and
  every URL can be cached for good. A request for another version is answered with the
  current set, revalidated each time: a page with an older config still gets a whole set.

The audio worklet is the static file for the site's own pages; for a page on another
origin it is :func:`audio_worklet`, under the agent's URL for the same reason.

Both are sent gzipped to a browser that accepts it: a static file server would compress
them, while Django compresses no response by default. They are read once per process, or
at each request with DEBUG on, so that an edit shows at the next reload of the page.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.templatetags.static import static
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from webcall_widget import origins

STATIC = Path(__file__).resolve().parent / "static" / "webcall_widget"
# The entry, which widget.js imports, first.
MODULES = ("widget-app", "panel", "rich-text", "voice", "connection")
WORKLET_STATIC = "webcall_widget/audio-worklet.js"
WORKLET = STATIC / "audio-worklet.js"
_ACCEPTS_GZIP = re.compile(r"\bgzip\b")


@dataclass(frozen=True)
class Script:
    body: bytes
    gzipped: bytes


def _script(path: Path) -> Script:
    body = path.read_bytes()
    return Script(body, gzip.compress(body, compresslevel=9, mtime=0))


def modules() -> tuple[str, dict[str, Script]]:
    """The version of the app's modules, and each module by name."""
    return _read_modules() if settings.DEBUG else _modules_once()


def _read_modules() -> tuple[str, dict[str, Script]]:
    scripts = {name: _script(STATIC / f"{name}.js") for name in MODULES}
    return version({name: script.body for name, script in scripts.items()}), scripts


_modules_once = functools.cache(_read_modules)


def version(bodies: dict[str, bytes]) -> str:
    """A version of a set of files: another as soon as any of them changes, is added or goes."""
    digest = hashlib.sha256()
    for name, body in sorted(bodies.items()):
        digest.update(f"{name}:{len(body)}:".encode())
        digest.update(body)
    return digest.hexdigest()[:16]


def worklet() -> tuple[str, Script]:
    return _read_worklet() if settings.DEBUG else _worklet_once()


def _read_worklet() -> tuple[str, Script]:
    script = _script(WORKLET)
    return version({WORKLET.name: script.body}), script


_worklet_once = functools.cache(_read_worklet)


def module_urls(slug: str) -> list[str]:
    """Every module's URL (paths on this site), the entry first."""
    current, _ = modules()
    return [
        reverse("webcall_widget:widget-module", args=[slug, current, name]) for name in MODULES
    ]


def worklet_url(request: HttpRequest, slug: str) -> str:
    """The static file for the site's own pages; for a page on another origin, the same
    file from :func:`audio_worklet`, which carries the agent's CORS headers."""
    page_origin = request.headers.get("Origin")
    if page_origin is None or origins.is_same_host(page_origin, request.get_host()):
        return static(WORKLET_STATIC)
    current, _ = worklet()
    return reverse("webcall_widget:audio-worklet", args=[slug]) + f"?v={current}"


@require_GET
def widget_module(request: HttpRequest, slug: str, version: str, name: str) -> HttpResponse:
    """One of the app's ES modules (see the module's docstring)."""
    current, scripts = modules()
    if name not in scripts:
        raise Http404("No such module of the widget.")
    return _javascript(request, scripts[name], for_good=version == current)


@require_GET
def audio_worklet(request: HttpRequest, slug: str) -> HttpResponse:
    """The audio worklet for pages on other origins (worklets are fetched in CORS mode)."""
    current, script = worklet()
    return _javascript(request, script, for_good=request.GET.get("v") == current)


def _javascript(request: HttpRequest, script: Script, *, for_good: bool) -> HttpResponse:
    zipped = bool(_ACCEPTS_GZIP.search(request.headers.get("Accept-Encoding", "")))
    response = HttpResponse(
        script.gzipped if zipped else script.body, content_type="text/javascript; charset=utf-8"
    )
    if zipped:
        response["Content-Encoding"] = "gzip"
    patch_vary_headers(response, ("Accept-Encoding",))
    response["Cache-Control"] = "public, max-age=31536000, immutable" if for_good else "no-cache"
    response["X-Content-Type-Options"] = "nosniff"
    return response
