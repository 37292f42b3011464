"""VoiceHub's call webhooks: receive, store, process, fetch analyses.

* :mod:`.events`: what VoiceHub documents about its webhooks (header, event types,
  statuses) and the pure parsing of a body;
* :mod:`.views`: the endpoint, ``agents/<slug>/webhook``: checks the agent's secret in
  constant time, limits the body, stores every event raw before anything else
  (:class:`~webcall_widget.models.WebhookEvent`, unique per agent and event id, so a retry
  is acknowledged and not processed twice);
* :mod:`.processing`: applies a stored event to its call (VoiceHub's status, recordings,
  analyses); an event for a call not known yet waits as "no matching call" and is
  processed when the call appears;
* :mod:`.analysis`: where an analysis may be fetched from (only the configured VoiceHub),
  the fetch itself, and reading its fields;
* :mod:`.worker`: fetches analyses in background threads of this process, never in the
  request that answers VoiceHub, with retries and backoff.
"""
