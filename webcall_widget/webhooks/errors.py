"""Errors of the webhook side.

::

    WebhookError
    ├── BadEvent                 a webhook body that is not a JSON object
    └── AnalysisFetchError       fetching an analysis failed (``retryable``: trying again
        │                        may help)
        ├── AnalysisUrlRefused   its URL is not on the configured VoiceHub; never fetched
        ├── AnalysisRefused      VoiceHub refused the agent's key (401, 403)
        ├── AnalysisUnavailable  a timeout, no connection, or 404, 408, 425, 429, 5xx
        └── AnalysisBadResponse  a redirect, another status, too large, or not a JSON object

Messages are for the site owner (logs, the admin). They are built from status codes, URLs
and our own words, never from request headers, so they never contain the API key.
"""

from __future__ import annotations


class WebhookError(Exception):
    pass


class BadEvent(WebhookError):
    pass


class AnalysisFetchError(WebhookError):
    retryable = False


class AnalysisUrlRefused(AnalysisFetchError):
    pass


class AnalysisRefused(AnalysisFetchError):
    pass


class AnalysisUnavailable(AnalysisFetchError):
    retryable = True


class AnalysisBadResponse(AnalysisFetchError):
    pass
