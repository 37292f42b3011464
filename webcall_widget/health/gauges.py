"""What this process holds now, read when Prometheus scrapes (never kept up to date by
hand): live calls by mode, voice calls and the capacity for them, whether it drains.

:func:`served` is what ``<prefix>/metrics`` serves: the relay's counters
(:data:`webcall_widget.metrics.REGISTRY`), these gauges, and the process's CPU, memory
and file descriptors. A site that runs its own exporter can register
``webcall_widget.metrics.REGISTRY`` and a :class:`RelayGauges` with its registry instead.
Needs ``prometheus_client`` (the ``metrics`` extra).
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.metrics_core import GaugeMetricFamily, InfoMetricFamily, Metric

from webcall_widget import metrics
from webcall_widget.conf import get_settings
from webcall_widget.relay import process
from webcall_widget.relay.process import RelayProcess
from webcall_widget.voicehub.events import Mode

P = metrics.PREFIX


class RelayGauges:
    """A collector of ``relay``'s state (by default this process's), as it is when read."""

    def __init__(self, relay: RelayProcess | None = None) -> None:
        self._relay = relay

    def collect(self) -> Iterator[Metric]:
        relay = self._relay or process.current
        live = GaugeMetricFamily(
            P + "live_calls", "Calls this process holds, by mode.", labels=["mode"]
        )
        by_mode = collections.Counter(call.mode.value for call in relay.calls.live_calls())
        for mode in Mode:
            live.add_metric([mode.value], by_mode[mode.value])
        yield live
        yield GaugeMetricFamily(
            P + "voice_calls",
            "Calls with audio this process holds (those waiting for their visitor too).",
            value=relay.calls.voice_calls(),
        )
        yield GaugeMetricFamily(
            P + "voice_call_capacity",
            "Voice calls this process takes at most (LIMITS.VOICE_CALLS_PER_PROCESS).",
            value=get_settings().limits.voice_calls_per_process,
        )
        yield GaugeMetricFamily(
            P + "draining",
            "1 once this process was asked to stop: it takes no new call.",
            value=1 if relay.draining else 0,
        )
        yield InfoMetricFamily(
            P + "relay_process",
            "This process's id, as the calls it holds record their owner.",
            value={"process": relay.id},
        )


@functools.cache
def served() -> CollectorRegistry:
    """What the metrics endpoint serves (built once per process)."""
    registry = CollectorRegistry()
    assert metrics.REGISTRY is not None, "served() needs prometheus_client"
    registry.register(metrics.REGISTRY)
    registry.register(RelayGauges())
    ProcessCollector(registry=registry)
    return registry
