"""``QueryService``: the only caller of the store's readers; every API goes through it.

It reads traces, applies the standard adjusters (unless ``raw``), and hands the HTTP and gRPC
layers ready-made results, so every API family sees the same data the same way.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

from spanlake.log_model import LogRecord
from spanlake.model import Span
from spanlake.query.adjusters.standard import adjust_trace
from spanlake.storage.api import (
    DependencyLink,
    FoundTrace,
    GetTrace,
    LogBucket,
    LogPage,
    LogQuery,
    LogReader,
    MetricReader,
    Operation,
    SampleQuery,
    SampleSeries,
    Store,
    StoreError,
    TraceQuery,
    TraceSummary,
)

if TYPE_CHECKING:
    import pyarrow as pa


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Suspend the cyclic garbage collector while a trace's objects are built and analysed.

    Reading a 100,000-span trace allocates a few million objects that all stay alive, and every
    allocation burst makes the collector walk the growing young generations again: measured,
    that was 40% of opening such a trace. Those objects hold no reference cycles, so nothing is
    lost by not collecting meanwhile; the collector resumes when the last overlapping pause
    ends. Pauses from several threads nest.

    When the pause ends, the objects allocated meanwhile are moved to the oldest generation
    (``gc.freeze()`` then ``gc.unfreeze()``, which only relinks lists): left in the youngest,
    the next young collections would each walk all of them once more on their way up.
    Cyclic garbage among them is still found, by the next full collection. This is skipped when
    something else keeps objects frozen, since ``unfreeze`` would release those too.
    """
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                if gc.get_freeze_count() == 0:
                    gc.freeze()
                    gc.unfreeze()
                gc.enable()


@dataclass
class TraceResult:
    """One trace as an API returns it: spans after adjusting, with their warnings."""

    trace_id: bytes
    spans: list[Span]
    span_warnings: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class QueryService:
    """Read-side facade over a :class:`Store`."""

    def __init__(self, store: Store, max_clock_skew_adjust_ns: int = 0) -> None:
        self.store = store
        self.max_clock_skew_adjust_ns = max_clock_skew_adjust_ns

    def _adjust(self, trace_id: bytes, spans: list[Span], raw: bool) -> TraceResult:
        adjusted = adjust_trace(spans, raw=raw, max_clock_skew_adjust_ns=self.max_clock_skew_adjust_ns)
        return TraceResult(trace_id, adjusted.spans, adjusted.span_warnings, adjusted.warnings)

    def get_trace(self, trace_id: bytes, start_ns: int | None = None, end_ns: int | None = None,
                  raw: bool = False) -> TraceResult | None:
        with gc_paused():
            spans = self.store.get_trace(GetTrace(trace_id, start_ns, end_ns))
            if not spans:
                return None
            return self._adjust(trace_id, spans, raw)

    def get_traces(self, trace_ids: list[bytes], raw: bool = False) -> list[TraceResult]:
        """Traces in the order of ``trace_ids``; unknown ids are left out."""
        found = self.store.get_traces(trace_ids)
        return [self._adjust(t, found[t], raw) for t in trace_ids if t in found]

    def find_traces(self, query: TraceQuery, raw: bool = False) -> list[TraceResult]:
        ids = [f.trace_id for f in self.store.find_trace_ids(query)]
        return self.get_traces(ids, raw)

    def find_trace_ids(self, query: TraceQuery) -> list[FoundTrace]:
        return self.store.find_trace_ids(query)

    def find_trace_summaries(self, query: TraceQuery) -> list[TraceSummary]:
        return self.store.find_trace_summaries(query)

    def get_services(self) -> list[str]:
        return sorted(self.store.get_services())

    def get_operations(self, service: str, span_kind: int | None = None) -> list[Operation]:
        return self.store.get_operations(service, span_kind)

    def get_dependencies(self, start_ns: int, end_ns: int) -> list[DependencyLink]:
        return self.store.get_dependencies(start_ns, end_ns)

    def archive_trace(self, trace_id: bytes) -> bool:
        return self.store.archive_trace(trace_id)

    def span_latency_rows(self, service: str | None, operation: str | None, span_kind: int | None,
                          attributes: tuple[tuple[str, str], ...], start_ns: int, end_ns: int,
                          limit: int, entry_only: bool = False) -> "pa.Table":
        """Span-level rows for exact latency figures (``Store.span_latency_rows``)."""
        return self.store.span_latency_rows(service, operation, span_kind, attributes, start_ns, end_ns, limit,
                                            entry_only)

    # -- logs -------------------------------------------------------------------------------

    def _log_reader(self) -> LogReader:
        if not isinstance(self.store, LogReader):
            raise StoreError("this store keeps no logs")
        return self.store

    def search_logs(self, query: LogQuery) -> LogPage:
        return self._log_reader().search_logs(query)

    def log_histogram(self, query: LogQuery, step_ns: int) -> list[LogBucket]:
        """Counts per bucket; with a start and an end, every bucket of the range is there, the
        empty ones as 0 (a zero count is an answer, which alerting on log volume needs)."""
        found = self._log_reader().log_histogram(query, step_ns)
        if query.start_ns is None or query.end_ns is None:
            return found
        counts = {b.start_ns: b.count for b in found}
        return [LogBucket(t, counts.get(t, 0)) for t in range(query.start_ns, query.end_ns, step_ns)]

    def trace_logs(self, trace_id: bytes) -> list[tuple[bytes, list[LogRecord]]]:
        """Logs of a trace grouped by span id (b"" for records without one), groups in the order
        of their first record, records oldest first."""
        groups: dict[bytes, list[LogRecord]] = {}
        for record in self._log_reader().logs_for_trace(trace_id):
            groups.setdefault(record.span_id, []).append(record)
        return list(groups.items())

    # -- metric samples ---------------------------------------------------------------------

    def query_samples(self, query: SampleQuery) -> list[SampleSeries]:
        """Stored samples (OTLP metrics and the series derived from spans and logs)."""
        if not isinstance(self.store, MetricReader):
            raise StoreError("this store keeps no metric samples")
        return self.store.query_samples(query)
