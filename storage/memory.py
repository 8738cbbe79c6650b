"""MemoryStore: a plain in-memory reference implementation of the Store contracts.

It favours obviousness over speed: searches loop over every span and compare string forms
exactly as :class:`~spanlake.storage.api.TraceQuery` describes them. It backs fast query tests
and passes the same storage suite as DuckLake; ``serve`` never falls back to it.
"""

from __future__ import annotations

import copy
import re
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from spanlake.log_model import LogBatch, LogRecord, logs_from_arrow
from spanlake.metrics_model import SampleBatch
from spanlake.model import Span, SpanBatch, spans_from_arrow
from spanlake.storage.api import (
    Capabilities,
    DependencyLink,
    FoundTrace,
    GetTrace,
    InvalidLogQuery,
    LogBucket,
    LogPage,
    LogQuery,
    Operation,
    SampleQuery,
    SampleSeries,
    ServiceSpanCount,
    StoreClosed,
    StoreStats,
    TraceQuery,
    TraceSummary,
    decode_log_cursor,
    encode_log_cursor,
)
from spanlake.storage.memory_samples import MemorySamples
from spanlake.storage.span_match import has_attribute, tag_matches



@dataclass
class _Stored:
    span: Span
    service: str  # the span row's service_name column, which searches use


class MemoryStore:
    """Everything in dicts behind one lock; ``write_spans`` returns a resolved future."""

    capabilities = Capabilities(trace_summaries=True, dependencies=True, retention=True, multi_process=False)

    def __init__(self, options: Any = None) -> None:
        self._lock = threading.Lock()
        self._traces: dict[bytes, list[_Stored]] = {}
        self._archived: set[bytes] = set()
        self._logs: list[_StoredLog] = []
        self._closed = False
        self._commits = 0
        self._samples = MemorySamples()

    # -- writing ----------------------------------------------------------------------------

    def write_spans(self, batch: SpanBatch) -> "Future[None]":
        spans = spans_from_arrow(batch.spans, batch.resources, batch.scopes)
        services = batch.spans.column("service_name").to_pylist()
        with self._lock:
            self._check_open()
            for span, service in zip(spans, services):
                self._traces.setdefault(span.trace_id, []).append(_Stored(span, service or ""))
            self._commits += 1
        fut: Future[None] = Future()
        fut.set_result(None)
        return fut

    def write_logs(self, batch: LogBatch) -> "Future[None]":
        records = logs_from_arrow(batch.logs, batch.resources, batch.scopes)
        services = batch.logs.column("service_name").to_pylist()
        with self._lock:
            self._check_open()
            self._logs.extend(_StoredLog(r, s or "") for r, s in zip(records, services))
            self._commits += 1
        fut: Future[None] = Future()
        fut.set_result(None)
        return fut

    def flush(self) -> None:
        """Nothing is ever queued."""

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the store is closed")

    def _all(self) -> list[_Stored]:
        with self._lock:
            self._check_open()
            return [s for spans in self._traces.values() for s in spans]

    # -- traces by id -----------------------------------------------------------------------

    def get_trace(self, query: GetTrace) -> list[Span]:
        return self.get_traces([query.trace_id]).get(query.trace_id, [])

    def get_traces(self, trace_ids: list[bytes]) -> dict[bytes, list[Span]]:
        with self._lock:
            self._check_open()
            found = {t: [s.span for s in self._traces[t]] for t in trace_ids if t in self._traces}
        return {t: sorted(copy.deepcopy(spans), key=lambda s: s.start_ns) for t, spans in found.items()}

    # -- search -----------------------------------------------------------------------------

    def find_trace_ids(self, query: TraceQuery) -> list[FoundTrace]:
        return [FoundTrace(s.trace_id, s.start_ns, s.end_ns) for s in self._find(query)]

    def find_trace_summaries(self, query: TraceQuery) -> list[TraceSummary]:
        return self._find(query)

    def _find(self, query: TraceQuery) -> list[TraceSummary]:
        with self._lock:
            self._check_open()
            hits = [
                _summarise(tid, spans)
                for tid, spans in self._traces.items()
                if any(_matches(s, query) for s in spans)
            ]
        hits.sort(key=lambda s: s.trace_id)
        hits.sort(key=lambda s: s.start_ns, reverse=True)
        return hits[: query.limit] if query.limit > 0 else hits

    def get_services(self) -> list[str]:
        return sorted({s.service for s in self._all()})

    def get_operations(self, service: str, span_kind: int | None = None) -> list[Operation]:
        ops = {
            (s.span.name, s.span.kind)
            for s in self._all()
            if s.service == service and (span_kind is None or s.span.kind == span_kind)
        }
        return [Operation(name, kind) for name, kind in sorted(ops)]

    def span_latency_rows(
        self,
        service: str | None,
        operation: str | None,
        span_kind: int | None,
        attributes: tuple[tuple[str, str], ...],
        start_ns: int,
        end_ns: int,
        limit: int = 1_000_000,
        entry_only: bool = False,
    ) -> pa.Table:
        q = TraceQuery(
            service_name=service,
            operation_name=operation,
            span_kind=span_kind,
            attributes=attributes,
            start_min_ns=start_ns,
            start_max_ns=end_ns,
        )
        stored = list(self._all())
        hits = sorted((s.span for s in stored if _matches(s, q)), key=lambda sp: sp.start_ns)
        if entry_only:
            service_of = {(s.span.trace_id, s.span.span_id): s.span.service_name for s in stored}
            hits = [sp for sp in hits if service_of.get((sp.trace_id, sp.parent_span_id)) != sp.service_name]
        hits = hits[len(hits) - max(0, limit) :] if limit < len(hits) else hits
        return pa.table(
            {
                "start_ns": pa.array([sp.start_ns for sp in hits], pa.int64()),
                "duration_ns": pa.array([sp.duration_ns for sp in hits], pa.int64()),
                "is_error": pa.array([sp.status_code == 2 for sp in hits], pa.bool_()),
                "trace_id": pa.array([sp.trace_id for sp in hits], pa.binary()),
            }
        )

    def get_dependencies(self, start_ns: int, end_ns: int) -> list[DependencyLink]:
        with self._lock:
            self._check_open()
            counts: dict[tuple[str, str], list[int]] = {}
            for spans in self._traces.values():
                by_id: dict[bytes, list[_Stored]] = {}
                for s in spans:
                    by_id.setdefault(s.span.span_id, []).append(s)
                for child in spans:
                    c = child.span
                    if not c.parent_span_id or not start_ns <= c.start_ns < end_ns:
                        continue
                    for parent in by_id.get(c.parent_span_id, []):
                        if parent.service != child.service:
                            acc = counts.setdefault((parent.service, child.service), [0, 0])
                            acc[0] += 1
                            acc[1] += c.status_code == 2
        return [DependencyLink(p, c, n, e) for (p, c), (n, e) in sorted(counts.items())]

    # -- logs -------------------------------------------------------------------------------

    def _matching_logs(self, q: LogQuery) -> list[_StoredLog]:
        regex = None
        if q.body_regex is not None:
            try:
                regex = re.compile(q.body_regex)
            except re.error as e:
                raise InvalidLogQuery("body_regex", f"invalid regular expression: {e}") from None
        with self._lock:
            self._check_open()
            return [s for s in self._logs if _log_matches(s, q, regex)]

    def search_logs(self, query: LogQuery) -> LogPage:
        after = None
        if query.cursor:
            try:
                after = decode_log_cursor(query.cursor)
            except ValueError as e:
                raise InvalidLogQuery("cursor", str(e)) from None
        hits = sorted(self._matching_logs(query), key=_log_order, reverse=True)
        if after is not None:
            hits = [s for s in hits if _log_order(s) < after]
        limit = max(0, query.limit)
        page = [copy.deepcopy(s.record) for s in hits[:limit]]
        more = len(hits) > limit and limit > 0
        return LogPage(page, encode_log_cursor(page[-1].time_ns, page[-1].log_id) if more else None)

    def log_histogram(self, query: LogQuery, step_ns: int) -> list[LogBucket]:
        if step_ns <= 0:
            raise InvalidLogQuery("step_ns", "the histogram step must be positive")
        origin = query.start_ns or 0
        counts: dict[int, int] = {}
        for s in self._matching_logs(query):
            t = s.record.time_ns
            bucket = t - (t - origin) % step_ns
            counts[bucket] = counts.get(bucket, 0) + 1
        return [LogBucket(b, n) for b, n in sorted(counts.items())]

    def logs_for_trace(self, trace_id: bytes) -> list[LogRecord]:
        if not trace_id:
            return []
        with self._lock:
            self._check_open()
            found = [s for s in self._logs if s.record.trace_id == trace_id]
        return [copy.deepcopy(s.record) for s in sorted(found, key=_log_order)]

    # -- archive and retention --------------------------------------------------------------

    def archive_trace(self, trace_id: bytes) -> bool:
        with self._lock:
            self._check_open()
            if trace_id not in self._traces:
                return False
            self._archived.add(trace_id)
            return True

    def apply_retention(self, cutoff_ns: int) -> int:
        deleted = 0
        with self._lock:
            self._check_open()
            for tid in list(self._traces):
                if tid in self._archived:
                    continue
                kept = [s for s in self._traces[tid] if s.span.start_ns >= cutoff_ns]
                deleted += len(self._traces[tid]) - len(kept)
                if kept:
                    self._traces[tid] = kept
                else:
                    del self._traces[tid]
            self._logs = [
                s for s in self._logs if s.record.time_ns >= cutoff_ns or s.record.trace_id in self._archived
            ]
        return deleted

    # -- metric samples ---------------------------------------------------------------------

    def write_samples(self, batch: SampleBatch) -> "Future[None]":
        return self._samples.write(batch)

    def query_samples(self, query: SampleQuery) -> list[SampleSeries]:
        return self._samples.query(query)

    # -- stats and close --------------------------------------------------------------------

    def stats(self) -> StoreStats:
        return StoreStats(queue_depth_spans=0, size_on_disk_bytes=0, commits=self._commits)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._samples.close()


@dataclass
class _StoredLog:
    record: LogRecord
    service: str  # the row's service_name column, which searches use


def _log_order(s: _StoredLog) -> tuple[int, int]:
    return s.record.time_ns, s.record.log_id


def _log_matches(stored: _StoredLog, q: LogQuery, regex: re.Pattern[str] | None) -> bool:
    r = stored.record
    if q.start_ns is not None and r.time_ns < q.start_ns:
        return False
    if q.end_ns is not None and r.time_ns >= q.end_ns:
        return False
    if q.service_name is not None and stored.service != q.service_name:
        return False
    if q.min_severity is not None and r.severity_number < q.min_severity:
        return False
    if q.trace_id is not None and r.trace_id != q.trace_id:
        return False
    if q.span_id is not None and r.span_id != q.span_id:
        return False
    if q.body_contains and q.body_contains.lower() not in r.body_text.lower():
        return False
    if regex is not None and not regex.search(r.body_text):
        return False
    return all(_log_attribute_matches(r, key, text) for key, text in q.attributes)


def _log_attribute_matches(r: LogRecord, key: str, text: str) -> bool:
    if key == "scope.name":
        return r.scope.name == text
    if key == "scope.version":
        return r.scope.version == text
    if key == "event.name":
        return r.event_name == text
    if key.startswith("resource.") and len(key) > len("resource."):
        return has_attribute(r.resource.attributes, key[len("resource.") :], text)
    return has_attribute(r.attributes, key, text) or has_attribute(r.scope.attributes, key, text) or has_attribute(r.resource.attributes, key, text)


def _summarise(trace_id: bytes, spans: list[_Stored]) -> TraceSummary:
    roots = [s for s in spans if not s.span.parent_span_id]
    root = min(roots, key=lambda s: s.span.start_ns) if roots else None
    per_service: dict[str, list[int]] = {}
    for s in spans:
        acc = per_service.setdefault(s.service, [0, 0])
        acc[0] += 1
        acc[1] += s.span.status_code == 2
    return TraceSummary(
        trace_id=trace_id,
        root_service_name=root.service if root else "",
        root_span_name=root.span.name if root else "",
        start_ns=min(s.span.start_ns for s in spans),
        end_ns=max(s.span.end_ns for s in spans),
        span_count=len(spans),
        error_span_count=sum(s.span.status_code == 2 for s in spans),
        services=tuple(ServiceSpanCount(n, c, e) for n, (c, e) in sorted(per_service.items())),
    )


def _matches(stored: _Stored, q: TraceQuery) -> bool:
    s = stored.span
    if q.start_min_ns is not None and s.start_ns < q.start_min_ns:
        return False
    if q.start_max_ns is not None and s.start_ns >= q.start_max_ns:
        return False
    if q.service_name is not None and stored.service != q.service_name:
        return False
    if q.operation_name is not None and s.name != q.operation_name:
        return False
    if q.span_kind is not None and s.kind != q.span_kind:
        return False
    if q.duration_min_ns is not None and s.duration_ns < q.duration_min_ns:
        return False
    if q.duration_max_ns is not None and s.duration_ns > q.duration_max_ns:
        return False
    return all(tag_matches(s, key, text) for key, text in q.attributes)


