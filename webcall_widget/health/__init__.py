"""Whether this process is alive and may take calls, and what it has counted: the health
endpoints (``<prefix>/health/live``, ``<prefix>/health/ready``) for load balancers and
probes, and the Prometheus endpoint (``<prefix>/metrics``) for operators.

- :mod:`.readiness`: the checks of the database, the cache and the channel layer, each
  bounded by a timeout and its answer kept about a second, so that probes polling every
  second cost each dependency at most one round trip a second per process;
- :mod:`.gauges`: what this process holds now (live calls, capacity, draining), read
  when Prometheus scrapes;
- :mod:`.views`: the three endpoints.
"""
