"""Spanlake's own metrics (Prometheus): what the receivers accepted and rejected, and how fast.

Each signal counts its own items: ``spanlake_receiver_spans_*``, ``..._log_records_*`` and
``..._metric_points_*`` (received, accepted, rejected by reason), per protocol.

With ``--workers N`` the receiver processes share their counters through prometheus_client's
multiprocess mode: the serve command sets ``PROMETHEUS_MULTIPROC_DIR`` before this module is
imported, and :func:`render` merges every process's values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_REASONS = "invalid, queue_full, undecodable, store_error, unavailable"


@dataclass(frozen=True)
class ReceiverCounters:
    """The item counters of one OTLP signal, named after its items as the OpenTelemetry
    Collector's receivers name theirs (spans, log records, metric points)."""

    received: Counter
    accepted: Counter
    rejected: Counter

    @classmethod
    def named(cls, items: str, what: str) -> "ReceiverCounters":
        """``spanlake_receiver_<items>_{received,accepted,rejected}``; ``what`` starts the help."""
        prefix = f"spanlake_receiver_{items}"
        return cls(
            Counter(f"{prefix}_received", f"{what} in export requests that decoded.", ["protocol"]),
            Counter(f"{prefix}_accepted", f"{what} committed to the store.", ["protocol"]),
            Counter(
                f"{prefix}_rejected",
                f"{what} not stored, by reason ({_REASONS}; undecodable counts requests).",
                ["protocol", "reason"],
            ),
        )


#: Signal name (``traces``, ``logs``, ``metrics``) -> its counters.
RECEIVER_COUNTERS = {
    "traces": ReceiverCounters.named("spans", "Spans"),
    "logs": ReceiverCounters.named("log_records", "Log records"),
    "metrics": ReceiverCounters.named("metric_points", "Metric data points"),
}
REQUESTS = Counter(
    "spanlake_receiver_requests", "Export requests by signal and outcome (ok, partial, error code).",
    ["protocol", "signal", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "spanlake_receiver_request_duration_seconds",
    "Export request latency from receipt to response (includes waiting for the commit).",
    ["protocol"],
    buckets=LATENCY_BUCKETS,
)


class StoreStatsCollector(Collector):
    """Figures read from the store at scrape time: queue depth, size on disk, and the group
    commits of this process (count, time, rows)."""

    def __init__(self, stats: Callable[[], object]) -> None:
        self._stats = stats

    def collect(self):  # type: ignore[override]
        s = self._stats()
        queue = GaugeMetricFamily("spanlake_write_queue_spans", "Spans waiting for the next commit in this process.")
        queue.add_metric([], float(getattr(s, "queue_depth_spans", 0)))
        size = GaugeMetricFamily("spanlake_store_size_bytes", "Bytes the store occupies on disk.")
        size.add_metric([], float(getattr(s, "size_on_disk_bytes", 0)))
        yield queue
        yield size
        for name, doc, attr in (
            ("spanlake_storage_commits", "Group commits of this process's writer.", "commits"),
            ("spanlake_storage_commit_seconds", "Wall time this process's group commits took.", "commit_seconds"),
            ("spanlake_storage_committed_rows", "Spans and log records this process's group commits wrote.",
             "committed_rows"),
        ):
            counter = CounterMetricFamily(name, doc)
            counter.add_metric([], float(getattr(s, attr, 0)))
            yield counter


def build_registry(store_stats: Callable[[], object] | None = None) -> CollectorRegistry:
    """The registry ``/metrics`` renders: this process's metrics, or all processes' in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = CollectorRegistry()
        for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001 - re-expose the defaults
            registry.register(collector)
    if store_stats is not None:
        registry.register(StoreStatsCollector(store_stats))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
