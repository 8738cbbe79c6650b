"""The collector's metric aggregation: span metrics, service graph and log counts, flushed to
the store as samples every resolution interval.

Committed span and log batches are handed over by :meth:`MetricsAggregation.wrap`'s writer
proxy (a done-callback of the commit future, so spans a client must retry are not counted
twice); the callback only queues the batch. One thread concatenates what is queued every
``process_interval_s`` and aggregates it in one vectorised pass, so a request never waits
for aggregation and the fixed cost of each Arrow call is shared by many requests.

Every ``resolution`` (aligned to the wall clock, so every process uses the same interval
starts) the thread writes the interval's *deltas* labelled with the interval's start. With
``--workers N`` each process writes its own rows for the same series and interval, and
readers add them up; nothing is lost or counted twice when a process restarts. A flush the
store refuses (queue full, conflict) is kept and written with the next one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Any, Callable, Sequence

import numpy as np
import pyarrow as pa
from prometheus_client import Counter

from spanlake.collector.logmetrics import LogMetrics
from spanlake.collector.servicegraph import ServiceGraph
from spanlake.collector.spanmetrics import SpanMetrics
from spanlake.metrics_model import SampleBatch, SampleRows
from spanlake.model import SpanBatch
from spanlake.storage.api import MetricWriter, StoreClosed, StoreError

log = logging.getLogger("spanlake.collector.aggregation")

DROPPED_SPANS = Counter(
    "spanlake_aggregator_dropped_spans",
    "Committed spans left out of span metrics and the service graph because the aggregator fell behind.",
)
FAILED_FLUSHES = Counter(
    "spanlake_aggregator_failed_flushes", "Flushes of derived series the store refused (written with the next one)."
)

#: Unwritten rows kept for the next flush at most; older ones are dropped (and logged).
MAX_UNWRITTEN_ROWS = 2_000_000


class MetricsAggregation:
    """Owns the aggregators and the thread that feeds and flushes them."""

    def __init__(
        self,
        writer: MetricWriter,
        *,
        resolution_ns: int,
        span_metrics: SpanMetrics | None = None,
        service_graph: ServiceGraph | None = None,
        log_metrics: LogMetrics | None = None,
        process_interval_s: float = 0.5,
        max_queued_spans: int = 1_000_000,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.writer = writer
        self.resolution_ns = resolution_ns
        self.span_metrics = span_metrics
        self.service_graph = service_graph
        self.log_metrics = log_metrics or LogMetrics()
        self.process_interval_s = process_interval_s
        self.max_queued_spans = max_queued_spans
        self.clock = clock
        self._cond = threading.Condition()
        self._spans: deque[SpanBatch] = deque()
        self._queued_spans = 0
        self._logs: deque[tuple[Any, Any]] = deque()
        self._flush_requests: list[Future[None]] = []
        self._stopping = False
        self._unwritten: list[SampleBatch] = []
        self._thread = threading.Thread(target=self._run, name="spanlake-aggregator", daemon=True)
        self._thread.start()

    @property
    def observes_spans(self) -> bool:
        return self.span_metrics is not None or self.service_graph is not None

    # -- intake ---------------------------------------------------------------------------

    def wrap(self, store: Any) -> Any:
        """A proxy of ``store`` whose ``write_spans`` / ``write_logs`` also feed this aggregation
        once the batch is committed; everything else goes to ``store`` itself."""
        return _ObservedWriter(store, self)

    def observe_spans(self, batch: SpanBatch) -> None:
        """Queue committed spans for span metrics and the service graph (any thread)."""
        if not self.observes_spans or batch.num_spans == 0:
            return
        with self._cond:
            if self._queued_spans + batch.num_spans > self.max_queued_spans:
                DROPPED_SPANS.inc(batch.num_spans)
                log.warning("aggregator queue full; spans left out of span metrics", extra={"spans": batch.num_spans})
                return
            self._spans.append(batch)
            self._queued_spans += batch.num_spans
            if self._queued_spans >= 50_000:
                self._cond.notify_all()

    def observe_logs(
        self,
        service_names: Sequence[str] | pa.Array | pa.ChunkedArray,
        severity_numbers: Sequence[int] | pa.Array | pa.ChunkedArray | np.ndarray,
        time_ns: object = None,
    ) -> None:
        """Count log records by service and severity number (any thread).

        ``time_ns`` is accepted for callers that have it and not used: like span metrics, log
        counts go into the interval in which they arrive.
        """
        with self._cond:
            self._logs.append((service_names, severity_numbers))

    # -- control --------------------------------------------------------------------------

    def flush(self, timeout: float = 60.0) -> None:
        """Aggregate everything queued and write the current interval's deltas now."""
        fut: Future[None] = Future()
        with self._cond:
            if self._stopping:
                return
            self._flush_requests.append(fut)
            self._cond.notify_all()
        fut.result(timeout)

    def close(self) -> None:
        """Aggregate and write what is left, then stop the thread. Idempotent."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        try:  # let the store create its sample tables now rather than at the first flush
            self.writer.write_samples(SampleBatch.empty()).result(timeout=120)
        except Exception as exc:  # the first flush reports it again if it persists
            log.warning("preparing the store for derived series failed: %s", exc)
        res = self.resolution_ns
        next_tick = (self.clock() // res + 1) * res
        while True:
            with self._cond:
                wait_s = min(self.process_interval_s, max(0.0, (next_tick - self.clock()) / 1e9))
                if not (self._stopping or self._flush_requests):
                    self._cond.wait(wait_s)
                spans = list(self._spans)
                self._spans.clear()
                self._queued_spans = 0
                logs = list(self._logs)
                self._logs.clear()
                stopping, requests = self._stopping, self._flush_requests
                self._flush_requests = []
            self._process(spans, logs)
            now = self.clock()
            if now >= next_tick or requests or stopping:
                # A scheduled flush labels the interval that just ended; an early one the
                # current interval (its later rows add up with these).
                start = next_tick - res if now >= next_tick else now // res * res
                self._flush(start, final=stopping)
                next_tick = (now // res + 1) * res
            for fut in requests:
                fut.set_result(None)
            if stopping:
                return

    def _process(self, spans: list[SpanBatch], logs: list[tuple[Any, Any]]) -> None:
        try:
            if spans:
                batch = SpanBatch.concat(spans)
                if self.span_metrics is not None:
                    self.span_metrics.observe(batch)
                if self.service_graph is not None:
                    self.service_graph.observe(batch)
            elif self.service_graph is not None:
                self.service_graph.expire()
            for services, severities in logs:
                self.log_metrics.observe(services, severities)
        except Exception:
            log.exception("metric aggregation failed for a batch; it is left out")

    def _flush(self, start_ns: int, *, final: bool) -> None:
        rows = SampleRows()
        for aggregator in (self.span_metrics, self.service_graph, self.log_metrics):
            if aggregator is not None:
                aggregator.collect(start_ns, rows)
        if len(rows):
            self._unwritten.append(rows.batch())
        if not self._unwritten:
            return
        batch = SampleBatch.concat(self._unwritten)
        try:
            self.writer.write_samples(batch).result(timeout=120)
            self._unwritten = []
        except (StoreError, TimeoutError) as exc:
            FAILED_FLUSHES.inc()
            if final or isinstance(exc, StoreClosed):
                log.error("derived series of this interval are lost: %s", exc)
                self._unwritten = []
                return
            log.warning("writing derived series failed; retrying with the next flush: %s", exc)
            while sum(b.num_samples for b in self._unwritten) > MAX_UNWRITTEN_ROWS and len(self._unwritten) > 1:
                lost = self._unwritten.pop(0)
                log.error("dropping %d unwritten derived samples", lost.num_samples)


class _ObservedWriter:
    """Store proxy: committed span and log batches also go to the aggregation."""

    def __init__(self, store: Any, aggregation: MetricsAggregation) -> None:
        self._store = store
        self._aggregation = aggregation

    def write_spans(self, batch: SpanBatch) -> "Future[None]":
        fut = self._store.write_spans(batch)
        if self._aggregation.observes_spans:
            fut.add_done_callback(lambda f: _committed(f) and self._aggregation.observe_spans(batch))
        return fut

    def write_logs(self, batch: Any) -> "Future[None]":
        fut = self._store.write_logs(batch)
        logs = batch.logs
        fut.add_done_callback(lambda f: _committed(f) and self._aggregation.observe_logs(
            logs.column("service_name"), logs.column("severity_number")))
        return fut

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _committed(fut: "Future[None]") -> bool:
    return not fut.cancelled() and fut.exception() is None


def start_aggregation(settings: Any, writer: MetricWriter) -> MetricsAggregation:
    """The aggregation a receiver process runs, from the ``metrics`` config section."""
    from spanlake.config import parse_duration_ns

    limit = settings.cardinality_limit
    dims = [d.strip() for d in settings.span_metrics_dimensions.split(",") if d.strip()]
    return MetricsAggregation(
        writer,
        resolution_ns=parse_duration_ns(settings.resolution),
        span_metrics=SpanMetrics(dims, limit) if settings.span_metrics else None,
        service_graph=ServiceGraph(parse_duration_ns(settings.service_graph_wait), settings.service_graph_max_pending,
                                   limit) if settings.service_graph else None,
        log_metrics=LogMetrics(limit),
    )
