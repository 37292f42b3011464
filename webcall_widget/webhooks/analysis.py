"""VoiceHub's analysis of a call: where it may be fetched from, the fetch, and its fields.

An ``AnalysisResultReady`` webhook names a URL, and fetching it sends the agent's API key.
So the URL must be on the VoiceHub the app is configured to talk to, the one the call
was created on: same scheme, host and port, under the same base path, no credentials in
it, nothing a URL parser could read two ways. Anything else is refused and never
fetched. The fetch follows no redirect, has timeouts and a size limit, and says whether
trying again may help (:class:`~webcall_widget.webhooks.errors.AnalysisFetchError`).

The result's shape is not documented. :func:`extract` reads the fields seen in a public
integration (``summary``, ``mainTopics``, ``sentiment {score, label, positiveKeywords,
negativeKeywords}``, ``empathyScore``, ``resolutionStatus``, ``userInterruptionsCount``,
``userSummary``, ``assistantSummary``, ``recordingUrls``, ``duration``) where they are,
and the raw JSON is always stored as well.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from webcall_widget import storable
from webcall_widget.conf import Settings
from webcall_widget.voicehub.client import unsendable_character
from webcall_widget.webhooks.errors import (
    AnalysisBadResponse,
    AnalysisFetchError,
    AnalysisRefused,
    AnalysisUnavailable,
    AnalysisUrlRefused,
)
from webcall_widget.webhooks.events import HEADER_ANALYSIS_KEY

URL_LENGTH = 2000
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Printable ASCII without spaces or backslashes: what parsers agree on.
_PLAIN_URL = re.compile(r"^[!-\[\]-~]+$")
RETRYABLE_STATUSES = frozenset({404, 408, 425, 429, 500, 502, 503, 504})
TEXT_LENGTH = 20_000
LABEL_LENGTH = 32
RESOLUTION_LENGTH = 64
MAX_ITEMS = 50
ITEM_LENGTH = 200


def configured_upstream(request: HttpRequest | None, settings: Settings) -> str | None:
    """The VoiceHub base URL calls are created on now: ``UPSTREAM.URL``, else the sandbox
    mounted on this site (as the create-call view derives it), else None."""
    if settings.upstream.url is not None:
        return settings.upstream.url
    if not settings.sandbox.enabled or request is None:
        return None
    return request.build_absolute_uri(settings.sandbox.path).rstrip("/")


def resolve_analysis_url(url: Any, upstream: str) -> str:
    """The absolute URL to fetch for ``url`` (absolute, or relative to ``upstream``).

    Raises:
        AnalysisUrlRefused: ``url`` is not on ``upstream``: another scheme, host or port,
            outside its base path, with credentials, or with characters parsers disagree on.
    """
    if not isinstance(url, str) or not url.strip():
        raise AnalysisUrlRefused("the event has no analysisResultUrl")
    url = url.strip()
    if len(url) > URL_LENGTH or not _PLAIN_URL.match(url):
        raise AnalysisUrlRefused(
            "the analysisResultUrl is too long or has spaces, backslashes or characters "
            "that are not ASCII; it is not fetched"
        )
    base = urlsplit(upstream)
    if "://" not in url and not url.startswith("//"):
        url = upstream.rstrip("/") + "/" + url.lstrip("/")
    try:
        target = urlsplit(url)
        port, base_port = _port(target), _port(base)
    except ValueError as exc:
        raise AnalysisUrlRefused(f"the analysisResultUrl {url!r} cannot be parsed") from exc
    base_path = base.path.rstrip("/")
    if (
        target.scheme.lower() != base.scheme.lower()
        or (target.hostname or "") != (base.hostname or "")
        or port != base_port
        or target.username is not None
        or target.password is not None
        or not (target.path == base_path or target.path.startswith(base_path + "/"))
        or "/../" in target.path + "/"
    ):
        raise AnalysisUrlRefused(
            f"the analysisResultUrl {url!r} is not on the configured VoiceHub "
            f"({upstream}); it is not fetched, so the agent's API key is not sent there"
        )
    return target._replace(fragment="").geturl()


def _port(parts: Any) -> int | None:
    return parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())


@sensitive_variables("api_key", "headers")
def fetch_analysis(
    url: str,
    *,
    api_key: str,
    timeout: float,
    max_bytes: int,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """GET an analysis result with the agent's key; the JSON object it is.

    ``timeout`` bounds connecting and each read; the whole answer must arrive within
    twice that. Redirects are not followed (one would send the key elsewhere).

    Raises:
        AnalysisFetchError: see :mod:`webcall_widget.webhooks.errors`.
    """
    if unsendable_character(api_key) is not None:
        raise AnalysisRefused(
            "the agent's API key cannot be sent in a header (a character that is not "
            "printable ASCII); type it again in the agent's admin page"
        )
    headers = {HEADER_ANALYSIS_KEY: api_key, "Accept": "application/json"}
    http = session or requests
    deadline = time.monotonic() + 2 * timeout
    try:
        response = http.get(
            url, headers=headers, timeout=(timeout, timeout), allow_redirects=False, stream=True
        )
    except requests.Timeout as exc:
        raise AnalysisUnavailable(f"{url} did not answer within {timeout:g}s") from exc
    except requests.exceptions.InvalidHeader:
        raise AnalysisRefused("requests refused the API key as a header value") from None
    except requests.RequestException as exc:
        raise AnalysisUnavailable(f"{url} could not be reached: {type(exc).__name__}") from exc
    with response:
        status = response.status_code
        if status in (401, 403):
            raise AnalysisRefused(f"{url} answered {status}: VoiceHub refused the agent's key")
        if status in RETRYABLE_STATUSES:
            raise AnalysisUnavailable(f"{url} answered {status}")
        if not 200 <= status < 300:
            what = "a redirect, which is not followed" if 300 <= status < 400 else "an error"
            raise AnalysisBadResponse(f"{url} answered {status}: {what}")
        body = _read_limited(response, url, max_bytes, deadline)
    try:
        data = storable.loads(body)
    except (ValueError, RecursionError) as exc:
        raise AnalysisBadResponse(f"{url} answered with a body that is not JSON") from exc
    if not isinstance(data, dict):
        raise AnalysisBadResponse(f"{url} answered with JSON that is not an object")
    return data


def _read_limited(response: requests.Response, url: str, limit: int, deadline: float) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise AnalysisBadResponse(f"{url} answered with more than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(8192):
            size += len(chunk)
            if size > limit:
                raise AnalysisBadResponse(f"{url} answered with more than {limit} bytes")
            if time.monotonic() > deadline:
                raise AnalysisUnavailable(f"{url} took too long to send its answer")
            chunks.append(chunk)
    except requests.RequestException as exc:
        raise AnalysisUnavailable(f"{url}: the answer was cut off ({type(exc).__name__})") from exc
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class AnalysisFields:
    summary: str = ""
    main_topics: list[str] = field(default_factory=list)
    sentiment_label: str = ""
    sentiment_score: float | None = None
    positive_keywords: list[str] = field(default_factory=list)
    negative_keywords: list[str] = field(default_factory=list)
    empathy_score: float | None = None
    resolution_status: str = ""
    user_interruptions: int | None = None
    user_summary: str = ""
    assistant_summary: str = ""
    recording_urls: list[str] = field(default_factory=list)
    duration_seconds: float | None = None


_WRAPPERS = ("data", "result", "analysis", "analysisResult")
_KNOWN = frozenset({"summary", "mainTopics", "sentiment", "resolutionStatus", "empathyScore"})


def extract(raw: Any) -> AnalysisFields:
    """The fields we know of, from whatever VoiceHub sent; what is missing or of another
    type stays empty. A result wrapped in ``data``, ``result`` or ``analysis`` is
    unwrapped."""
    data = raw if isinstance(raw, dict) else {}
    if not _KNOWN & set(data):
        for key in _WRAPPERS:
            if isinstance(data.get(key), dict):
                data = data[key]
                break
    sentiment = data.get("sentiment")
    label: Any = ""
    score: Any = None
    positive: Any = data.get("positiveKeywords")
    negative: Any = data.get("negativeKeywords")
    if isinstance(sentiment, dict):
        label = sentiment.get("label") or sentiment.get("sentiment") or ""
        score = sentiment.get("score")
        positive = sentiment.get("positiveKeywords", positive)
        negative = sentiment.get("negativeKeywords", negative)
    elif isinstance(sentiment, str):
        label = sentiment
    elif _number(sentiment) is not None:
        score = sentiment
    interruptions = _number(data.get("userInterruptionsCount"))
    return AnalysisFields(
        summary=_text(data.get("summary")),
        main_topics=_strings(data.get("mainTopics")),
        sentiment_label=_text(label, LABEL_LENGTH).lower(),
        sentiment_score=_number(score),
        positive_keywords=_strings(positive),
        negative_keywords=_strings(negative),
        empathy_score=_number(data.get("empathyScore")),
        resolution_status=_text(data.get("resolutionStatus"), RESOLUTION_LENGTH).lower(),
        user_interruptions=(
            int(interruptions) if interruptions is not None and interruptions >= 0 else None
        ),
        user_summary=_text(data.get("userSummary")),
        assistant_summary=_text(data.get("assistantSummary")),
        recording_urls=_strings(data.get("recordingUrls"), length=URL_LENGTH),
        duration_seconds=_number(data.get("duration")),
    )


def _text(value: Any, length: int = TEXT_LENGTH) -> str:
    if isinstance(value, str):
        return value.strip()[:length]
    if isinstance(value, list):  # a summary as a list of points
        return "\n".join(_strings(value, length=length))[:length]
    return ""


def _strings(value: Any, *, length: int = ITEM_LENGTH) -> list[str]:
    """Strings from a list of strings, or of objects with a name; or a comma-separated
    string."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return []
    found: list[str] = []
    for item in value[:MAX_ITEMS]:
        if isinstance(item, dict):
            item = next(
                (item[k] for k in ("topic", "name", "title", "label", "keyword") if k in item),
                None,
            )
        if isinstance(item, str) and item.strip():
            found.append(item.strip()[:length])
    return found


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


__all__ = [
    "AnalysisFetchError",
    "AnalysisFields",
    "configured_upstream",
    "extract",
    "fetch_analysis",
    "resolve_analysis_url",
]
